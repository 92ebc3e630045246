"""Policy files: validation with errors that name the file and key, hashing, and the shipped policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.gate.policy import TRACKS, PolicyError, default_policy_path, load_policy

SUITES = Path(__file__).resolve().parents[2] / "suites"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.toml"
    p.write_text(text)
    return p


def test_shipped_policies_load_and_name_their_track() -> None:
    for track in TRACKS:
        p = load_policy(SUITES / f"policy_{track}.toml")
        assert p.track == track and p.metric_names()
        assert default_policy_path(track).name == f"policy_{track}.toml"
    up = load_policy(SUITES / "policy_upscale.toml")
    assert up.baseline_decoder == "plain" and up.rule("psnr").required and not up.rule("fid").required


@pytest.mark.parametrize(("text", "phrase"), [
    ('[policy]\ntrack = "decode"\n[metrics.psnr]\nmargn = 0.2\n', "unknown key 'margn'"),
    ('[policy]\ntrack = "decod"\n[metrics.psnr]\n', "track must be one of"),
    ('[policy]\ntrack = "decode"\n[metrics.psnr]\nmargin = -1\n', "margin: must be >= 0.0"),
    ('[policy]\ntrack = "decode"\n[metrics.psnr]\nmin = 3\nmax = 2\n', "min 3.0 is above max 2.0"),
    ('[policy]\ntrack = "decode"\n[metrics.psnr]\nrequired = "yes"\n', "required: expected true or false"),
    ('[policy]\ntrack = "decode"\n', "no [metrics.NAME] tables"),
    ('[policy\n', "not valid TOML"),
])
def test_bad_policies_name_file_and_key(tmp_path: Path, text: str, phrase: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    assert phrase in str(err.value) and str(p) in str(err.value)


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="did you mean 'margin'"):
        load_policy(write(tmp_path, '[policy]\ntrack = "decode"\n[metrics.psnr]\nmargn = 0.2\n'))


def test_sha256_follows_content_not_formatting(tmp_path: Path) -> None:
    a = load_policy(write(tmp_path, '[policy]\ntrack = "decode"\n[metrics.psnr]\nmargin = 0.2\n'))
    b = load_policy(write(tmp_path, '# comment\n[policy]\ntrack="decode"\n\n[metrics.psnr]\nmargin=0.2\n'))
    c = load_policy(write(tmp_path, '[policy]\ntrack = "decode"\n[metrics.psnr]\nmargin = 0.3\n'))
    assert a.sha256() == b.sha256() != c.sha256()


def test_metric_not_in_policy_is_required(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, '[policy]\ntrack = "decode"\n[metrics.psnr]\nmargin = 0.2\n'))
    assert p.rule("lpips").required and p.rule("lpips").margin is None
