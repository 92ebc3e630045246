"""Metrics: pure functions in submodules, small classes declaring direction, range and needs."""
