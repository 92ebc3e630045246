"""Official weight files: the known-files table, the local store, discovery in caches, explicit fetch.

CLI entry points: :func:`cli_list`, :func:`cli_import`, :func:`cli_verify`, :func:`cli_fetch`.
"""

from qa.weights.store import (
    WEIGHTS_ENV,
    cli_fetch,
    cli_import,
    cli_list,
    cli_verify,
    fetch,
    fix_command,
    import_file,
    locate,
    require,
    unavailable_reason,
    verify,
    weights_dir,
)
from qa.weights.table import KNOWN, WeightsSpec

__all__ = [
    "KNOWN", "WEIGHTS_ENV", "WeightsSpec", "cli_fetch", "cli_import", "cli_list", "cli_verify", "fetch",
    "fix_command", "import_file", "locate", "require", "unavailable_reason", "verify", "weights_dir",
]
