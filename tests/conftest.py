"""Shared pytest configuration of qa's own tests: the ``pytester`` fixture (plugin tests run pytest inside)."""

pytest_plugins = ["pytester"]
