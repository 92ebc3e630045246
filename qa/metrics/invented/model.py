"""The invented-detail model: every constant of the method, its version and the per-image result type.

One place for the numbers that define what is measured (``docs/hallucination.md`` explains each): the oracle
(:mod:`qa.metrics.invented.oracle`), the production analysis (:mod:`qa.metrics.invented.analysis`) and both of
its tiers read them from here, so the tiers cannot drift apart. Units: pixels for sigmas and windows, luma^2
for energies (luma ``Y = 0.299 R + 0.587 G + 0.114 B`` of sRGB values in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: version of the invented-detail method (the metric classes that run it declare it; stored with every value)
METHOD_VERSION = "7"

#: the smallest image side the analysis takes (pixels): the derivative features need two samples per axis
#: (``numpy.gradient``)
MIN_SIDE = 2
#: luma weights (Rec. 601)
LUMA = (0.299, 0.587, 0.114)
#: inner sigmas (pixels) of the difference-of-Gaussian bands; band s spans roughly 1/(2 pi 2s)..1/(2 pi s) cyc/px
BAND_SIGMAS: tuple[float, ...] = (0.8, 1.6, 3.2)
#: sigma (pixels) of the Gaussian window of the local statistics
WINDOW_SIGMA = 4.0
#: unexplained energy below this fraction of the reference's local band energy is tolerated as model mismatch
#: (JPEG ringing, aliasing of resampling, non-linear tone curves all leave a residual that scales with detail)
LOCAL_TOLERANCE = 0.1
#: absolute floor per band (luma^2): below 8-bit quantisation noise, so clean images score 0
ABS_FLOOR = (1.0 / 255.0) ** 2 / 12.0
#: ridge added to the local normal equations, relative to their trace, plus an absolute term (luma^2)
RIDGE_REL = 1e-6
RIDGE_ABS = 1e-9
#: Gaussian low-pass (pixels) on which colour/tone distortion is measured
DISTORTION_SIGMA = 4.0
#: Gaussian sigma (pixels) that separates "high frequencies" in the HF energy
HF_SIGMA = 1.0
#: finest band: Y - G_FINE_SIGMA * Y (periods 2 to about 5 px)
FINE_SIGMA = 0.8
#: Gaussian window (pixels) of the finest band's residual and reference energies (small: maps follow regions)
FINE_WINDOW = 2.0
#: noise floor of the share's three coarser bands = factor x percentile of the unexplained energy over the image
NOISE_FLOOR_PERCENTILE = 25.0
NOISE_FLOOR_FACTOR = 2.0
#: Gaussian window (pixels) of the surround in which the benign residual level ``a + b R`` is fitted (the finest
#: band; the three coarser bands of the region score)
SURROUND_SIGMA = 64.0
#: unexplained energy counts above SURROUND_FACTOR x the surround's benign level
SURROUND_FACTOR = 3.0
#: robust surround fit: the residual is clipped at SURROUND_CLIP x the first fit before the second
SURROUND_CLIP = 2.0
#: finest band: residual below this fraction of the reference's local finest-band energy is tolerated (smaller
#: than :data:`LOCAL_TOLERANCE`: the surround's ``b R`` term and the codec cap model what scales with detail)
FINE_TOLERANCE = 0.02
#: neighbour predictability (fraction of residual energy, [0, 1]) above which a residual is periodic structure
PERIODIC_MIN = 0.95
#: offsets (dy, dx) of the symmetric neighbour pairs that predict the finest-band residual
PREDICT_OFFSETS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (1, -1))
#: Gaussian (pixels) of the pointwise residual energy that places each window's invented energy in the map
MAP_SIGMA = 1.0
#: half-side (pixels) of the square grey closing that makes the map from the invented energy: gaps of up to
#: 2 x MAP_CLOSING px between invented structures (sparse strokes, hatching, hair) read as one region; equal to
#: the analysis window's sigma (:data:`WINDOW_SIGMA`), the scale at which the energy was measured (the scalars
#: never see the closing)
MAP_CLOSING = 4
#: Gaussian sigma (pixels) of the fixed-size region over which the region score averages invented energy
#: (about 28 x 28 px: a word, a logo, a small object)
REGION_SIGMA = 8.0
#: masking floor (luma^2) of the region score's denominator: invented amplitude is measured against the region's
#: reference detail plus (4/255)^2, so flat ground (sky, walls) has a finite, small denominator
REGION_FLOOR = (4.0 / 255.0) ** 2
#: the spectral rule (narrowband structure the reference does not have): side and step (pixels) of the square
#: Hann windows whose periodograms are compared (windows on a grid of that step, the last flush with the image)
SPECTRAL_WINDOW = 32
SPECTRAL_STEP = 16
#: side (bins) of the square median that is a periodogram's local spectral envelope (circular in frequency)
SPECTRAL_ENVELOPE = 5
#: a bin of the residual's periodogram is narrowband structure where it exceeds SPECTRAL_PEAK x the envelope plus
#: SPECTRAL_REFERENCE x the reference's finest-band periodogram at the same bin. The bins of a smooth spectrum
#: (noise, grain) are exponential about their local mean, whose median is ln 2 x the mean: one exceeds 16 x the
#: median by chance with probability 2^-16, so a 32 x 32 window has a chance bin in 1.6% of windows and the median
#: window none (8 x: 0.4% of bins, four per window: noise read as 0.3 grey levels on flat ground)
SPECTRAL_PEAK = 16.0
SPECTRAL_REFERENCE = 4.0
#: masking floor (luma^2) of the spectral reading: one 8-bit grey level; see docs/hallucination.md
SPECTRAL_FLOOR = (1.0 / 255.0) ** 2
#: codec block side (pixels); blocks are aligned to the image origin, as a codec of the whole image has them
CODEC_BLOCK = 8
#: per-coefficient slack (orthonormal DCT, luma in [0, 1]) for 8-bit rounding of output and reference
CODEC_SLACK = 2.0 / 255.0
#: a block's invented energy is capped at this many times its mean codec excess energy
CODEC_FACTOR = 4.0


@dataclass
class InventedResult:
    """Everything the analysis computes for one output/reference pair.

    ``map``: (H, W) float32 RMS amplitude of invented band-pass detail, luma units (0 = none), bounded pixel by
    pixel by the change (``change``), after the region closing (:data:`MAP_CLOSING`) and its hole filling;
    ``invented_energy`` (H, W) is the energy before them (what ``invented`` sums). ``invented``: invented
    energy (three bands and the finest) / max(output, reference) energy of the three bands, clipped to [0, 1].
    ``lost``: reference band energy the output does not reproduce / reference band energy, in [0, 1].
    ``out_energy``/``ref_energy``: summed energies of the three bands (luma^2).
    ``noise_floor``: the share's floor per band (the three coarse ones), luma^2. ``fine_invented``: the finest band's share of ``invented``, in [0, 1].
    ``region``: the strongest region's reading (its three coarser bands cut at the surround's benign level
    instead of the image-wide floor), the largest ratio over the image of the RMS invented amplitude in a
    Gaussian region (sigma :data:`REGION_SIGMA`) to the RMS of the reference's detail there plus
    :data:`REGION_FLOOR`, ``sqrt(max_x G * E / (G * R + floor))``, in [0, inf) (0 = nothing invented);
    ``peak_at``: that region's centre (y, x), pixels. ``spectral``: the spectral rule's reading (narrowband
    structure the reference lacks, the median window's RMS amplitude relative to the reference's finest-band
    detail plus :data:`SPECTRAL_FLOOR`), in [0, inf). ``peak``: the region score, the larger of the two.
    """

    map: np.ndarray
    invented: float
    lost: float
    invented_energy: np.ndarray
    out_energy: float
    ref_energy: float
    noise_floor: tuple[float, ...]
    fine_invented: float = 0.0
    peak: float = 0.0
    peak_at: tuple[int, int] = (0, 0)
    region: float = 0.0
    spectral: float = 0.0
    #: (H, W) float32 output minus reference luma, the bound of every map drawn from this pair's invented energy
    #: (the latent split's too); None where the pair's change is not kept
    change: np.ndarray | None = None
