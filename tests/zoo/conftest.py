"""Fixtures for the zoo tests: tiny image lists from scikit-image (tests only, never shipped weights)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.zoo import data as zdata


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ci_images() -> list[np.ndarray]:
    """Smoke-test images: skimage camera() and brick() (grayscale, expanded to RGB)."""
    from skimage import data

    return zdata.images_from_arrays([data.camera(), data.brick()])


@pytest.fixture(scope="session")
def astronaut_crop() -> torch.Tensor:
    """A 64x64 crop of skimage's astronaut as ``[1,3,64,64]`` in [0, 1]."""
    from skimage import data

    a = data.astronaut()[200:264, 180:244]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255
