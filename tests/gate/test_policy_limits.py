"""Policy `seed` and `n_boot` limits (audit F6): a negative seed crashed `qa gate` inside numpy (traceback, exit 1,
read as a FAIL) and an unbounded `n_boot` could take all memory; both are now policy errors (exit 2)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from qa.bootstrap import MAX_N_BOOT
from qa.cli.main import main
from qa.gate.policy import PolicyError, load_policy
from tests.helpers import make_refset

HEAD = '[policy]\ntrack = "upscale"\n'
METRICS = "[metrics.psnr]\nmin = 5.0\n"


def _policy(tmp_path: Path, line: str) -> Path:
    p = tmp_path / "p.toml"
    p.write_text(HEAD + line + "\n" + METRICS)
    return p


@pytest.mark.parametrize(("line", "phrase"), [
    ("seed = -1", "seed: expected an integer >= 0, got -1"),
    ("seed = 1.5", "seed: expected an integer >= 0, got 1.5"),
    ("n_boot = 99", "n_boot: expected an integer from 100 to 100,000, got 99"),
    (f"n_boot = {MAX_N_BOOT + 1}", f"n_boot: expected an integer from 100 to 100,000, got {MAX_N_BOOT + 1}"),
    ("n_boot = 1000000000", "16 bytes x n_boot x images"),
])
def test_out_of_range_seed_and_n_boot_are_policy_errors(tmp_path: Path, line: str, phrase: str) -> None:
    p = _policy(tmp_path, line)
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    assert str(p) in str(err.value) and phrase in str(err.value)


@pytest.mark.parametrize("line", ["seed = 0", "seed = 9223372036854775807", "n_boot = 100", f"n_boot = {MAX_N_BOOT}"])
def test_the_limits_themselves_are_accepted(tmp_path: Path, line: str) -> None:
    load_policy(_policy(tmp_path, line))


def test_gate_with_a_negative_seed_is_a_usage_error_not_a_fail(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "qa.duckdb")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", "--decoder", "bicubic", "--reference-set", str(make_refset(tmp_path / "set", n=2)),
                     "--metrics", "psnr", "--db", db, "--no-progress"]) == 0
    capsys.readouterr()
    rc = main(["gate", "--run", "latest", "--decoder", "bicubic", "--baseline", "none",
               "--policy", str(_policy(tmp_path, "seed = -1")), "--db", db])
    err = capsys.readouterr().err
    assert rc == 2 and "seed: expected an integer >= 0, got -1" in err and "Traceback" not in err
