"""Shared synthetic inputs: a small photo crop (package-shipped) and band-limited textures with known support."""

from __future__ import annotations

import numpy as np
import pytest

from tests.metrics.invented.synth import SIDE


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96x96 float32 crop of skimage's astronaut (face and suit), [0, 1]."""
    import skimage.data
    from skimage.transform import resize

    img = skimage.data.astronaut()[:256, 128:384] / 255.0
    return resize(img, (SIDE, SIDE), anti_aliasing=True).astype(np.float32)
