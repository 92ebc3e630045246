"""pytest plugin for release suites (filled in by the gating work)."""
