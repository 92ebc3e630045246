"""The registries of decoders, encoders and metrics, with the built-in members.

This file is the one place where built-ins are named; third-party packages add members through the entry-point
groups ``qa.decoders`` and ``qa.metrics`` (a target is ``"module:attr"``, a callable returning an instance).
"""

from __future__ import annotations

from qa.decoders.base import Decoder
from qa.metrics.base import Metric
from qa.registry import Registry

DECODERS: Registry[Decoder] = Registry("decoder", "qa.decoders")
METRICS: Registry[Metric] = Registry("metric", "qa.metrics")

_BUILTIN_DECODERS = {
    "identity": "qa.decoders.simple:IdentityDecoder",
    "bicubic": "qa.decoders.simple:BicubicDecoder",
    "vae": "qa.decoders.vae:VAEDecoder",
    "pid": "qa.decoders.pid:make_pid",
    "esrgan": "qa.decoders.esrgan:ESRGANDecoder",
    "esrgan-x4plus-anime": "qa.decoders.esrgan:x4plus_anime",
    "esrgan-anime-x2": "qa.decoders.esrgan:anime_x2",
    "esrgan-anime-x3": "qa.decoders.esrgan:anime_x3",
    "esrgan-anime-x4": "qa.decoders.esrgan:anime_x4",
    "taesd": "qa.decoders.taesd:TAESDDecoder",
    "taef2": "qa.decoders.taesd:taef2",
    "taef2+esrgan": "qa.decoders.taesd_esrgan:taef2_esrgan",
    "l2p": "qa.decoders.l2p:make_l2p",
    "ldm+vae": "qa.decoders.l2p:LDMVAEDecoder",
    "ldm+pid": "qa.decoders.l2p:LDMPiDDecoder",
}

_BUILTIN_METRICS = {
    "psnr": "qa.metrics.fidelity:PSNR",
    "ssim": "qa.metrics.fidelity:SSIM",
    "ssim_skimage": "qa.metrics.fidelity:SSIMSkimage",
    "ms_ssim": "qa.metrics.fidelity:MSSSIM",
    "lpips_alex": "qa.metrics.perceptual:LPIPSAlex",
    "lpips_vgg": "qa.metrics.perceptual:LPIPSVGG",
    "fid": "qa.metrics.realism:FID",
    "kid": "qa.metrics.realism:KID",
    "clip_score": "qa.metrics.clip:CLIPScore",
    "cmmd": "qa.metrics.clip:CMMD",
    "invented_detail": "qa.metrics.invented.metrics:InventedDetail",
    "invented_detail_baseline": "qa.metrics.invented.metrics:InventedDetailBaseline",
    "lost_detail": "qa.metrics.invented.metrics:LostDetail",
    "distortion": "qa.metrics.invented.metrics:Distortion",
    "hf_energy_ratio": "qa.metrics.invented.metrics:HFEnergyRatio",
    "hf_energy_ratio_baseline": "qa.metrics.invented.metrics:HFEnergyRatioBaseline",
    "latent_consistency": "qa.metrics.invented.metrics:LatentConsistency",
    "invented_consistent": "qa.metrics.invented.metrics:InventedConsistent",
    "invented_contradicting": "qa.metrics.invented.metrics:InventedContradicting",
    "seed_variance": "qa.metrics.invented.metrics:SeedVariance",
    "agreement_psnr": "qa.metrics.agreement:AgreementPSNR",
    "agreement_ssim": "qa.metrics.agreement:AgreementSSIM",
    "agreement_lpips": "qa.metrics.agreement:AgreementLPIPS",
    "seed_alignment": "qa.metrics.agreement:SeedAlignment",
}

for _name, _target in _BUILTIN_DECODERS.items():
    DECODERS.register(_name, _target)
for _name, _target in _BUILTIN_METRICS.items():
    METRICS.register(_name, _target)
#: names users type for a metric registered under a more specific name
METRICS.alias("lpips", "lpips_alex")
