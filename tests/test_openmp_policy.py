"""Importing qa makes idle OpenMP workers sleep (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import os, qa; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize(("given", "want"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_sets_a_passive_default_and_keeps_the_users_choice(given: str | None, want: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == want
