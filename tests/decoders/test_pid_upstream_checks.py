"""The upstream PiD adapter's own checks, which need no PiD checkout: captions (PiD is caption-conditioned) and
whether a checkpoint's keys fit the net (PiD itself loads with strict=False). Their runs against the real PiD code
are in tests/upstream/test_pid_contract.py and test_pid_engine.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.pid import make_pid
from qa.decoders.pid_checkpoint_keys import check_fits, checkpoint_keys, key_mismatch, net_names
from qa.errors import DecoderError

NET = ["blocks.0.attn.weight", "blocks.0.attn.bias", "lq_proj.head.weight", "final.weight"]


def _batch(captions: list[str]) -> DecodeBatch:
    n = len(captions)
    return DecodeBatch([f"case{i}" for i in range(n)], captions, torch.zeros(n, 16, 2, 2), (64, 64))


@pytest.mark.parametrize("captions", [["a red cat", ""], ["   "], []])
def test_a_case_without_a_caption_is_refused_before_the_model_loads(captions):
    """Nothing is configured, so loading would fail with 'cannot load PiD': the caption check comes first."""
    dec = make_pid(backend="upstream")
    n = max(1, len(captions))
    batch = DecodeBatch([f"case{i}" for i in range(n)], captions, torch.zeros(n, 16, 2, 2), (64, 64))
    with pytest.raises(DecoderError) as info:
        dec.decode(batch, seed=0)
    text = str(info.value)
    first = "case1" if captions == ["a red cat", ""] else "case0"
    assert f"case {first!r} has no caption" in text and "PiD is caption-conditioned" in text
    assert "'caption' column" in text and "allow_empty_caption = true" in text
    assert "cannot load PiD" not in text


def test_allow_empty_caption_is_a_setting_recorded_with_the_run():
    dec = make_pid(backend="upstream", allow_empty_caption=True)
    assert dec.settings["allow_empty_caption"] is True
    assert make_pid(backend="upstream").settings["allow_empty_caption"] is False
    assert dec.info().settings["allow_empty_caption"] is True  # what provenance and `qa decoders` show
    with pytest.raises(DecoderError, match="cannot load PiD"):  # past the caption check, on to loading
        dec.decode(_batch([""]), seed=0)
    with pytest.raises(DecoderError, match="cannot load PiD"):  # captioned cases never met the check
        make_pid(backend="upstream").decode(_batch(["a red cat"]), seed=0)


def test_key_mapping_follows_pids_inference_loader():
    """``net.X`` -> X; net_ema./fake_score./discriminator. skipped; other keys reach the net as they are."""
    keys = ["net.a.weight", "net_ema.a.weight", "fake_score.x", "discriminator.y", "bare.bias"]
    assert net_names(keys) == {"a.weight", "bare.bias"}
    assert key_mismatch([f"net.{k}" for k in NET], NET) == ([], [])
    assert key_mismatch(NET, NET) == ([], [])  # a bare state dict fits too, as in PiD
    missing, unexpected = key_mismatch(["net.blocks.0.attn.weight", "net.other"], NET)
    assert missing == ["blocks.0.attn.bias", "final.weight", "lq_proj.head.weight"] and unexpected == ["other"]


def test_a_checkpoint_that_does_not_fit_names_counts_examples_and_what_to_do(tmp_path: Path):
    good = [f"net.{k}" for k in NET]
    check_fits(tmp_path / "ok.pth", good + ["net_ema.final.weight"], NET, "PiD's flux/2k net")  # no error
    with pytest.raises(DecoderError) as info:
        check_fits(tmp_path / "renamed.pth", [k.replace("net.", "net.x.") for k in good], NET, "PiD's flux/2k net")
    text = str(info.value)
    assert "renamed.pth: does not fit PiD's flux/2k net: 4 of the net's 4 weights missing" in text
    assert "4 unexpected keys (e.g. x.blocks.0.attn.bias, x.blocks.0.attn.weight, x.final.weight, ...)" in text
    assert "random weights" in text and "model_ema_bf16.pth" in text and "checkpoint_type" in text
    with pytest.raises(DecoderError, match=r"2 of the net's 4 weights missing \(final.weight, lq_proj.head.weight\)"):
        check_fits(tmp_path / "half.pth", good[:2], NET, "net")
    # upstream's "expected missing" LQ keys are refused too: without them the net ignores the latent
    with pytest.raises(DecoderError, match="no LQ-projection .lq_proj. weights: a text-to-image checkpoint"):
        check_fits(tmp_path / "t2i.pth", [k for k in good if "lq_proj" not in k], NET, "net")


def test_checkpoint_keys_are_the_files_top_level_keys(tmp_path: Path):
    sd = {f"net.{k}": torch.zeros(2) for k in NET}
    torch.save(sd, tmp_path / "flat.pth")
    assert checkpoint_keys(tmp_path / "flat.pth") == list(sd)
    torch.save({"state_dict": sd}, tmp_path / "wrapped.pth")  # PiD does not unwrap: nothing would fit
    assert checkpoint_keys(tmp_path / "wrapped.pth") == ["state_dict"]
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)  # cannot be memory-mapped
    assert checkpoint_keys(tmp_path / "legacy.pth") == list(sd)


def test_a_dcp_folder_must_hold_every_net_weight_under_the_prefix_read(tmp_path: Path):
    """PiD loads DCP folders with allow_partial_load=True; qa names what a folder lacks."""
    import warnings

    import torch.distributed.checkpoint as dcp

    from qa.decoders.pid_checkpoint_keys import check_dcp_fits, dcp_keys

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dcp.save({"net.a": torch.zeros(2), "net.b": torch.zeros(2), "net_ema.a": torch.ones(2),
                  "fake_score.x": torch.ones(1)}, checkpoint_id=str(tmp_path / "ck" / "model"))
    keys = dcp_keys(tmp_path / "ck" / "model")
    assert sorted(keys) == ["fake_score.x", "net.a", "net.b", "net_ema.a"]
    check_dcp_fits(tmp_path / "ck", keys, ["a", "b"], "net.", "net")  # extra training keys are no error
    with pytest.raises(DecoderError, match=r"ck: does not fit net: 1 of the net's 2 weights missing under "
                                           r"net_ema\.\* \(b\)"):
        check_dcp_fits(tmp_path / "ck", keys, ["a", "b"], "net_ema.", "net")
    with pytest.raises(DecoderError, match="1 of the net's 3 weights missing under net"):
        check_dcp_fits(tmp_path / "ck", keys, ["a", "b", "c"], "net.", "net")
