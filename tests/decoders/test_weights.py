"""Safe checkpoint reading: safetensors or weights-only torch files; clear errors naming the file."""

from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from qa.decoders.weights import folder_weights_sha256, load_into, load_state_dict
from qa.errors import DecoderError, WeightsMissingError


class _Payload:
    """Not a tensor: a pickle that needs arbitrary code to load."""


def test_reads_safetensors_and_weights_only_torch_files(tmp_path):
    sd = {"w": torch.arange(6.0).reshape(2, 3)}
    save_file(sd, str(tmp_path / "a.safetensors"))
    torch.save({"state_dict": sd}, tmp_path / "b.pth")
    assert torch.equal(load_state_dict(tmp_path / "a.safetensors")["w"], sd["w"])
    assert torch.equal(load_state_dict(tmp_path / "b.pth")["w"], sd["w"])


def test_refuses_pickled_code_corrupt_and_missing_files(tmp_path):
    torch.save({"w": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(DecoderError, match="evil.pth"):
        load_state_dict(tmp_path / "evil.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(DecoderError, match="bad.safetensors"):
        load_state_dict(tmp_path / "bad.safetensors")
    with pytest.raises(WeightsMissingError, match="none.pth"):
        load_state_dict(tmp_path / "none.pth")


def test_wrong_shape_state_is_refused_with_the_file_and_key(tmp_path):
    net = torch.nn.Linear(3, 2)
    with pytest.raises(DecoderError, match=r"ckpt.pth.*weight"):
        load_into(net, {"weight": torch.zeros(4, 3), "bias": torch.zeros(2)}, tmp_path / "ckpt.pth")
    with pytest.raises(DecoderError, match="missing"):
        load_into(net, {"weight": torch.zeros(2, 3)}, "ckpt.pth")
    load_into(net, {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, "ckpt.pth")
    assert float(net.weight.detach().sum()) == 6.0


def test_folder_hash_is_over_sorted_files(tmp_path):
    (tmp_path / "b.safetensors").write_bytes(b"BBB")
    (tmp_path / "a.safetensors").write_bytes(b"AA")
    (tmp_path / "config.json").write_text("{}")
    assert folder_weights_sha256(tmp_path) == hashlib.sha256(b"AABBB").hexdigest()
    with pytest.raises(WeightsMissingError):
        folder_weights_sha256(tmp_path / "config.json")
