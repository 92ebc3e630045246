"""MS-SSIM in torch float32 on the run's device: the fast path of the ``ms_ssim`` metric.

Same definition as :func:`qa.metrics.functional.fidelity.ms_ssim` (Wang et al. 2003: 5 scales on RGB, weights
:data:`~qa.metrics.functional.fidelity.MS_SSIM_WEIGHTS`, Gaussian 11x11 sigma 1.5 "valid" window, 2x2 average
pooling, negative terms clipped at 0), which stays the float64 reference it is tested against (agreement about
1e-6 absolute: float32 filtering; the per-scale means are accumulated in float64). The five local moments of
the three channels are filtered as 15 planes of one grouped, separable convolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as tf

from qa.metrics.functional.fidelity import (
    _K1,
    _K2,
    MS_SSIM_SIGMA,
    MS_SSIM_WEIGHTS,
    MS_SSIM_WINDOW,
    check_ms_ssim_pair,
    gaussian_kernel1d,
)
from qa.metrics.torch_memory import keep_freed_memory


def ms_ssim_torch(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0, device: str = "cpu") -> float:
    """MS-SSIM of two (H, W, 3) images (both sides > 160 px), in [0, 1]; float32 on ``device``."""
    check_ms_ssim_pair(output, reference)
    levels = len(MS_SSIM_WEIGHTS)
    keep_freed_memory()  # as the invented-detail analysis: intermediates reuse freed memory (process-wide)
    dev = torch.device(device)
    k = torch.from_numpy(gaussian_kernel1d(MS_SSIM_WINDOW, MS_SSIM_SIGMA)).to(dev, torch.float32)
    kw = k.view(1, 1, 1, MS_SSIM_WINDOW).expand(15, 1, 1, MS_SSIM_WINDOW)
    kh = k.view(1, 1, MS_SSIM_WINDOW, 1).expand(15, 1, MS_SSIM_WINDOW, 1)
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(output, 2, 0), dtype=np.float32)).to(dev)
        y = torch.from_numpy(np.ascontiguousarray(np.moveaxis(reference, 2, 0), dtype=np.float32)).to(dev)
        c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
        terms = []
        for lvl in range(levels):
            planes = torch.cat([x, y, x * x, y * y, x * y])[None]  # (1, 15, H, W)
            f = tf.conv2d(tf.conv2d(planes, kw, groups=15), kh, groups=15)[0]
            mx, my, exx, eyy, exy = f.split(3)
            sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
            cs = (2 * sxy + c2) / (sxx + syy + c2)
            v = cs if lvl < levels - 1 else cs * (2 * mx * my + c1) / (mx * mx + my * my + c1)
            terms.append(v.double().mean(dim=(1, 2)).clamp(min=0))
            if lvl < levels - 1:
                h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
                x = tf.avg_pool2d(x[None, :, :h, :w], 2)[0]
                y = tf.avg_pool2d(y[None, :, :h, :w], 2)[0]
        weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=dev)
        return float(torch.prod(torch.stack(terms) ** weights[:, None], dim=0).mean())
