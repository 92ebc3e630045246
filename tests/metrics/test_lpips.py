"""LPIPS equals the lpips package given the same seeded random backbone and the real v0.1 heads."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from qa.metrics.base import ImageSample
from qa.metrics.perceptual import LPIPSVGG, LPIPSAlex

lpips = pytest.importorskip("lpips")
HEADS = Path(lpips.__file__).parent / "weights" / "v0.1"


def _random_backbone(net: str, path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    if net == "alex":
        feats = torchvision.models.alexnet(weights=None).features
    else:  # VGG16 features only (the classifier is not used by LPIPS and is slow to initialise)
        from torchvision.models.vgg import cfgs, make_layers

        feats = make_layers(cfgs["D"])
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)


def _peer(net: str, backbone: Path):  # noqa: ANN202
    """lpips.LPIPS with the real heads and our random backbone copied into its slices."""
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        peer = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    state = torch.load(backbone, weights_only=True)
    with torch.no_grad():
        for i in range(1, 6):
            for name, p in getattr(peer.net, f"slice{i}").named_parameters():
                idx, kind = name.split(".")
                p.copy_(state[f"features.{idx}.{kind}"])
    return peer.eval()


@pytest.mark.parametrize("net,cls", [("alex", LPIPSAlex), ("vgg", LPIPSVGG)])
def test_lpips_equals_package(tmp_path: Path, net: str, cls: type) -> None:
    backbone = tmp_path / f"{net}.pth"
    _random_backbone(net, backbone)
    ours = cls(backbone_path=backbone, heads_path=HEADS / f"{net}.pth")
    assert ours.unavailable_reason() is None
    peer = _peer(net, backbone)
    rng = np.random.default_rng(0)
    ref = rng.random((2, 64, 72, 3)).astype(np.float32)
    out = np.clip(ref + 0.2 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    with torch.no_grad():
        expected = peer(to_t(out), to_t(ref), normalize=True).flatten().numpy()
    values, maps = ours.compute_batch(list(out), list(ref), spatial=True)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    # the map: the package's spatial=True output, same weights
    peer.spatial = True
    with torch.no_grad():
        peer_map = peer(to_t(out), to_t(ref), normalize=True)[:, 0].numpy()
    assert maps is not None and maps[0].shape == (64, 72)
    np.testing.assert_allclose(np.stack(maps), peer_map, rtol=1e-4, atol=1e-6)
    single = ours.compute(ImageSample("c", out[0], ref[0]))
    assert single.value == pytest.approx(float(expected[0]), rel=1e-5)
    assert single.map is not None and single.map.shape == (64, 72) and (single.map >= 0).all()


def test_identical_images_score_zero(tmp_path: Path) -> None:
    backbone = tmp_path / "alex.pth"
    _random_backbone("alex", backbone)
    img = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    v = LPIPSAlex(backbone_path=backbone, heads_path=HEADS / "alex.pth").compute(ImageSample("c", img, img))
    assert v.value == pytest.approx(0.0, abs=1e-7)


def test_missing_weights_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path))
    reason = LPIPSAlex().unavailable_reason()
    assert reason is not None
    assert "qa weights fetch alexnet" in reason and "qa weights import" in reason


# Official LPIPS (AlexNet, v0.1) on TID2013 pairs (IQA-PyTorch ResultsCalibra), order I03, I04, I06, I08, I19.
TID_LPIPS = {"I03": 0.7237, "I04": 0.2572, "I06": 0.05079, "I08": 0.05205, "I19": 0.4253}
TID = Path("/work/shared/external/tid2013-calibration")


@pytest.mark.upstream
def test_tid2013_lpips_with_official_weights() -> None:
    metric = LPIPSAlex()
    reason = metric.unavailable_reason()
    if reason is not None or not TID.exists():
        pytest.skip(reason or f"{TID} absent")
    from qa.imageio import load_image

    for name, expected in TID_LPIPS.items():
        dist = load_image(TID / "dist" / f"{name}.bmp").pixels
        ref = load_image(TID / "ref" / f"{name}.bmp").pixels
        assert metric.compute(ImageSample(name, dist, ref)).value == pytest.approx(expected, abs=1e-2), name
