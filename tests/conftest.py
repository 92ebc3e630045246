"""Shared pytest configuration of qa's own tests: the ``pytester`` fixture (plugin tests run pytest inside).

``torch._dynamo`` is imported here, once, before any test: ``pytester``'s in-process runs restore
``sys.modules`` afterwards, so a module first imported inside one (diffusers imports ``torch._dynamo``) is
imported again later, and ``torch._dynamo`` registers a C++ operator library that cannot be registered twice
("Only a single TORCH_LIBRARY can be used to register the namespace _inductor_test"). Seen when
``tests/gate/test_release_cycle.py`` ran before ``tests/generate``.
"""

import torch._dynamo  # noqa: F401

pytest_plugins = ["pytester"]
