"""The metric catalogue: every metric name this installation knows, as a lazy ``"module:attr"`` target.

The built-in metrics are named here (listing names imports no metric module and no torch); third-party packages
add theirs through the entry-point group ``qa.metrics`` (a target is a :class:`~qa.metrics.base.Metric` subclass
or a callable returning an instance). What a metric declares (direction, range, level, needs, weights) is read
without importing it by :mod:`qa.metrics.declarations`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.lazy_registry import Registry

if TYPE_CHECKING:
    from qa.metrics.base import Metric

METRICS: Registry[Metric] = Registry("metric", "qa.metrics", {
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
    "invented_peak": "qa.metrics.invented.metrics:InventedPeak",
    "lost_detail": "qa.metrics.invented.metrics:LostDetail",
    "chroma_peak": "qa.metrics.chroma:ChromaPeak",
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
    "text_cer": "qa.metrics.text.metrics:TextCER",
    "text_wer": "qa.metrics.text.metrics:TextWER",
    "text_invented": "qa.metrics.text.metrics:TextInvented",
    "baseline_psnr": "qa.metrics.plain_baseline:BaselinePSNR",
    "baseline_ssim": "qa.metrics.plain_baseline:BaselineSSIM",
    "baseline_lpips_alex": "qa.metrics.plain_baseline:BaselineLPIPSAlex",
})

#: names users type for a metric registered under a more specific name
METRICS.alias("lpips", "lpips_alex")
