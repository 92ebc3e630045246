"""The official weight files qa knows: name, file name, sha256, size, source URL, licence, users.

Every entry pins the file's full sha256. torchvision publishes only the first 8 hex digits in the file name
(torch hub checks exactly that prefix, 32 bits: a forged file with the same prefix takes minutes to make), so
for its AlexNet and VGG16 files the full digest and size of the published bytes are pinned here, as recorded
independently by several projects that downloaded them. The LPIPS v0.1 linear heads ship inside the ``lpips``
package; their sha256 is of the files in lpips 0.1.4.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsSpec:
    """One official weight file.

    ``sha256``: the full hex digest (a file matches only on all 64 digits). ``size``: bytes, 0 if not pinned. ``aliases``: other file names the same bytes go by in other tools' caches. ``fmt``: how qa
    loads it: ``torch`` (``torch.load(weights_only=True)``), ``state-dict`` (the same, and the file must be a
    plain ``{name: tensor}`` dict; checked again at import), ``torchscript-verified`` (OpenAI CLIP archives,
    read only after the full sha256 matched). ``metrics``: the metrics or decoders that use the file.
    """

    name: str
    filename: str
    url: str
    licence: str
    metrics: tuple[str, ...]
    sha256: str
    size: int = 0
    aliases: tuple[str, ...] = ()
    fmt: str = "torch"
    note: str = ""

    def matches(self, digest: str) -> bool:
        """Whether a file's full sha256 ``digest`` (64 hex digits) is this official file."""
        return len(self.sha256) == 64 and digest.lower() == self.sha256

    @property
    def pinned(self) -> str:
        """The pinned hash as text."""
        return self.sha256


KNOWN: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in [
        WeightsSpec(
            name="inception-fid",
            filename="pt_inception-2015-12-05-6726825d.pth",
            aliases=("weights-inception-2015-12-05-6726825d.pth",),
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            licence="Apache-2.0 (TensorFlow inception-2015-12-05, ported by pytorch-fid)",
            metrics=("fid", "kid"),
            note="the FID InceptionV3 used by pytorch-fid, torchmetrics and torch-fidelity",
        ),
        WeightsSpec(
            name="alexnet",
            filename="alexnet-owt-7be5be79.pth",
            url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
            size=244_408_911,
            licence="BSD-3-Clause (torchvision)",
            metrics=("lpips_alex",),
            note="torchvision AlexNet ImageNet weights (LPIPS backbone)",
        ),
        WeightsSpec(
            name="vgg16",
            filename="vgg16-397923af.pth",
            url="https://download.pytorch.org/models/vgg16-397923af.pth",
            sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
            size=553_433_881,
            licence="BSD-3-Clause (torchvision); CC BY 4.0 (VGG authors)",
            metrics=("lpips_vgg",),
            note="torchvision VGG16 ImageNet weights (LPIPS backbone)",
        ),
        WeightsSpec(
            name="lpips-alex-v0.1",
            filename="alex.pth",
            url="https://github.com/richzhang/PerceptualSimilarity/raw/v0.1/lpips/weights/v0.1/alex.pth",
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            licence="BSD-2-Clause (lpips)",
            metrics=("lpips_alex",),
            note="LPIPS v0.1 linear heads; ships in the lpips package",
        ),
        WeightsSpec(
            name="lpips-vgg-v0.1",
            filename="vgg.pth",
            url="https://github.com/richzhang/PerceptualSimilarity/raw/v0.1/lpips/weights/v0.1/vgg.pth",
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            licence="BSD-2-Clause (lpips)",
            metrics=("lpips_vgg",),
            note="LPIPS v0.1 linear heads; ships in the lpips package",
        ),
        WeightsSpec(
            name="clip-vit-b-32-openai",
            filename="ViT-B-32.pt",
            url="https://openaipublic.azureedge.net/clip/models/"
            "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
            sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
            licence="MIT (OpenAI CLIP)",
            metrics=("clip_score", "cmmd"),
            fmt="torchscript-verified",
            note="OpenAI CLIP ViT-B/32 (the sha256 is part of OpenAI's URL)",
        ),
        WeightsSpec(
            name="clip-vit-l-14-336-openai",
            filename="ViT-L-14-336px.pt",
            url="https://openaipublic.azureedge.net/clip/models/"
            "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
            sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
            licence="MIT (OpenAI CLIP)",
            metrics=("cmmd_l14",),
            fmt="torchscript-verified",
            note="OpenAI CLIP ViT-L/14 at 336 px, the model of the CMMD paper",
        ),
        WeightsSpec(
            name="taef2-encoder",
            filename="taef2_encoder.pth",
            url="https://github.com/madebyollin/taesd/raw/main/taef2_encoder.pth",
            sha256="10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
            licence="MIT (madebyollin/taesd)",
            metrics=("taef2", "taef2+esrgan"),
            fmt="state-dict",
            note="TAEF2 encoder: pixels -> FLUX.2-VAE-like raw latents (32 channels, 1/8 side)",
        ),
        WeightsSpec(
            name="taef2-decoder",
            filename="taef2_decoder.pth",
            url="https://github.com/madebyollin/taesd/raw/main/taef2_decoder.pth",
            sha256="0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
            licence="MIT (madebyollin/taesd)",
            metrics=("taef2", "taef2+esrgan"),
            fmt="state-dict",
            note="TAEF2 decoder: FLUX.2 raw latents -> RGB in [0, 1] at 8x (adversarially trained)",
        ),
    ]
}
