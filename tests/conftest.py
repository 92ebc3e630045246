"""Shared pytest configuration of qa's own tests: the ``pytester`` fixture (plugin tests run pytest inside).

``torch._dynamo`` is imported here, once, before any test: ``pytester``'s in-process runs restore
``sys.modules`` afterwards, so a module first imported inside one (diffusers imports ``torch._dynamo``) is
imported again later, and ``torch._dynamo`` registers a C++ operator library that cannot be registered twice
("Only a single TORCH_LIBRARY can be used to register the namespace _inductor_test"). Seen when
``tests/gate/test_release_cycle.py`` ran before ``tests/generate``.

numba has the same trap: its first compilation imports its lowering registries (``numba.np.polynomial`` ...);
when that first compilation happens inside a ``pytester`` run, the restored ``sys.modules`` forgets them and the
next compilation registers ``PolynomialType`` twice (``KeyError: duplicate registration``). Seen when
``tests/gate`` ran before ``tests/metrics/invented``. One tiny compilation here, before any test, loads them.
"""

import numba
import torch._dynamo  # noqa: F401


@numba.njit(cache=False)
def _first_numba_compilation(x: float) -> float:
    return x + 1.0


_first_numba_compilation(1.0)

pytest_plugins = ["pytester"]
