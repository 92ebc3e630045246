"""CLIP score (image-caption agreement) and CMMD (CLIP-embedding MMD), with open_clip models and local weights.

The official weights are OpenAI's CLIP files (``qa weights list``). They are TorchScript archives: qa reads one
only after its full sha256 matched OpenAI's published hash, takes its state dict, and builds the open_clip
architecture from it. Tests and users may pass an already built open_clip model instead (``model=``, with
``model_sha256`` naming its weights for the feature cache). A model without a weights sha256 has no cache key:
its features are never read from or written to the cache (two such models would share one key).

Preprocessing (named in the cache key): resize the shorter side to the model's input size (bicubic, antialias),
centre crop, normalise with the OpenAI CLIP mean/std.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from qa.bootstrap import bootstrap_statistic, centred_bootstrap
from qa.metrics.base import ImageSample, MetricInputError, NotApplicable, SetMetric, SetValue
from qa.metrics.feature_cache import (
    CachedExtractor,
    FeatureCache,
    computation_tag,
    merge_seen_references,
    new_reference,
    pixels_sha256,
    to_uint8,
)
from qa.metrics.functional import realism as R
from qa.store.db import Store
from qa.weights import store as wstore

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
OFFICIAL = {"ViT-B-32": "clip-vit-b-32-openai", "ViT-L-14-336": "clip-vit-l-14-336-openai"}


def preprocess(images: list[np.ndarray], size: int) -> torch.Tensor:
    """uint8 (H, W, 3) images (same shape) -> normalised float (N, 3, size, size)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[..., top:top + size, left:left + size]
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def load_official(model_name: str, device: str = "cpu") -> tuple[torch.nn.Module, str]:
    """Build ``model_name`` from OpenAI's verified file; returns (model, sha256)."""
    import open_clip  # noqa: PLC0415
    from open_clip.model import build_model_from_openai_state_dict  # noqa: PLC0415

    name = OFFICIAL.get(model_name)
    if name is None:
        raise MetricInputError(f"no official weights known for CLIP model {model_name!r}", f"known: {list(OFFICIAL)}")
    path = wstore.require(name)  # verified against the full official sha256 before anything reads it
    sd = torch.jit.load(str(path), map_location="cpu").state_dict()
    model = build_model_from_openai_state_dict(sd, quick_gelu=True, cast_dtype=None)
    del open_clip
    return model.to(device).eval(), wstore.KNOWN[name].sha256 or ""


class _CLIPSetMetric(SetMetric):
    model_name = "ViT-B-32"
    weights: tuple[str, ...] = ("clip-vit-b-32-openai",)

    def __init__(self, model: torch.nn.Module | None = None, model_sha256: str = "", tokenizer=None,  # noqa: ANN001
                 model_name: str | None = None, device: str = "cpu", batch_size: int = 32,
                 store: Store | None = None, n_bootstrap: int = 200, seed: int = 0) -> None:
        self.model_name = model_name or self.model_name
        self.weights = (OFFICIAL.get(self.model_name, self.model_name),)
        self._model, self.model_sha256, self._tokenizer = model, model_sha256, tokenizer
        self.device, self.batch_size, self.store = torch.device(device), batch_size, store
        self.n_bootstrap, self.seed = n_bootstrap, seed
        self._extractor: CachedExtractor | None = None
        self.reset()

    def unavailable_reason(self) -> str | None:
        """None when a model was given or the official file is present and verified; else the fix command."""
        if self._model is not None:
            return None
        if self.model_name not in OFFICIAL:
            return f"no official weights known for {self.model_name!r}; pass model="
        return wstore.unavailable_reason(self.weights)

    def model(self) -> Any:
        """The open_clip model (loaded from the verified official file on first use)."""
        if self._model is None:
            self._model, self.model_sha256 = load_official(self.model_name, str(self.device))
        return self._model

    def image_size(self) -> int:
        size = self.model().visual.image_size
        return int(size[0] if isinstance(size, tuple | list) else size)

    def extractor(self) -> CachedExtractor:
        """Image-embedding extractor behind the feature cache."""
        if self._extractor is None:
            size = self.image_size()
            prep = f"uint8-round;bicubic-antialias-shorter-side;{size};center-crop;openai-mean-std" + computation_tag(
                ("qa.metrics.clip",), str(self.device), libraries=("open_clip_torch",))

            def embed(images: list[np.ndarray]) -> np.ndarray:
                by_shape: dict[tuple[int, ...], list[int]] = {}
                for i, im in enumerate(images):
                    by_shape.setdefault(im.shape, []).append(i)
                res = np.empty((len(images),), dtype=object)
                for idx in by_shape.values():
                    for k in range(0, len(idx), self.batch_size):
                        part = idx[k:k + self.batch_size]
                        with torch.inference_mode():
                            e = self.model().encode_image(preprocess([images[i] for i in part], size).to(self.device))
                        for j, i in enumerate(part):
                            res[i] = e[j].float().cpu().numpy()
                return np.stack(list(res))

            # no weights sha256 (a model given without model_sha256): nothing names its features, so none are
            # cached (the key would be shared with any other unnamed model of this architecture)
            cache = (FeatureCache(self.store, f"open_clip:{self.model_name}:image", self.model_sha256, prep)
                     if self.store is not None and self.model_sha256 else None)
            dim = getattr(self.model().visual, "output_dim", None)
            self._extractor = CachedExtractor(embed, cache, dim=dim if isinstance(dim, int) else None)
        return self._extractor

    def reset(self) -> None:
        """Forget all samples."""
        self._queue: list[tuple[str, str, np.ndarray, str]] = []  # (role, sha, uint8, caption)
        self._seen_refs: set[str] = set()
        self._reset_state()

    def _reset_state(self) -> None:
        raise NotImplementedError

    def export_state(self) -> dict[str, object]:
        """Everything added so far, picklable (reference sha256s and the subclass's embeddings or scores)."""
        self._flush()
        return {"refs": sorted(self._seen_refs), "stats": self._export()}

    def merge_state(self, state: dict[str, object]) -> None:
        """Add another instance's :meth:`export_state`; merge in shard order to get the local engine's result.
        A reference image in two states: MetricInputError (it would count twice)."""
        self._flush()
        merge_seen_references(self.name, self._seen_refs, state["refs"])  # type: ignore[arg-type]
        self._merge(state["stats"])  # type: ignore[arg-type]

    def _export(self) -> dict[str, object]:
        raise NotImplementedError

    def _merge(self, stats: dict[str, object]) -> None:
        raise NotImplementedError

    def _take(self, queue: list[tuple[str, str, np.ndarray, str]], feats: np.ndarray) -> None:
        raise NotImplementedError

    def flush_features(self) -> None:
        """Compute the embeddings of every queued image now (the engine: at the end of each shard)."""
        self._flush()

    def _flush(self) -> None:
        if self._queue:
            queue, self._queue = self._queue, []
            feats = self.extractor()([q[1] for q in queue], [q[2] for q in queue])
            if not np.isfinite(feats).all():
                raise MetricInputError(f"{self.name}: the CLIP embeddings of {len(queue)} queued image(s) contain "
                                       "NaN or Inf values")
            self._take(queue, feats)

    def _check_output(self, sample: ImageSample) -> None:
        if not np.isfinite(sample.output).all():
            raise MetricInputError(f"{self.name}: case {sample.case_id}: output contains NaN or Inf values")


def has_caption(caption: str | None) -> bool:
    """Whether ``caption`` says anything: None, "" and whitespace-only captions are no caption (a blank caption
    tokenises to start and end tokens only, and its score would say nothing about the image)."""
    return bool(caption and caption.strip())


class CLIPScore(_CLIPSetMetric):
    """CLIP score: mean over captioned outputs of max(100 cos(image, caption), 0), in [0, 100]; higher is better;
    CI by bootstrap over the images.

    Outputs without a caption (none, empty or whitespace only: ``qa refset build`` leaves missing captions empty)
    are counted and not scored: the value is the mean over the captioned outputs (``n``), and the detail says how
    many outputs had no caption. No captioned output at all: not applicable (missing), never a value.
    """

    name = "clip_score"
    version = "2"  # 2: each distinct output counted once (a deterministic decoder's two seeds were 2n)
    higher_is_better = True
    value_range = (0.0, 100.0)
    needs = ("caption",)
    description = ("CLIP score max(100 cos, 0) of output vs caption (open_clip CLIP ViT-B/32, OpenAI weights), mean "
                   "over the captioned images (uncaptioned ones counted in the detail, not scored)")

    def _reset_state(self) -> None:
        self.scores: list[float] = []
        #: outputs seen without a caption (not scored)
        self.uncaptioned = 0

    def _export(self) -> dict[str, object]:
        return {"scores": list(self.scores), "uncaptioned": self.uncaptioned}

    def _merge(self, stats: dict[str, object]) -> None:
        self.scores.extend(float(x) for x in stats["scores"])  # type: ignore[attr-defined]
        self.uncaptioned += int(stats["uncaptioned"])  # type: ignore[call-overload]

    def update(self, sample: ImageSample) -> None:
        """Queue one output with its caption; an output without one (see :func:`has_caption`) is only counted."""
        self._check_output(sample)
        if not has_caption(sample.caption):
            self.uncaptioned += 1
            return
        self._queue.append(("cand", pixels_sha256(sample.output), to_uint8(sample.output), sample.caption))
        if len(self._queue) >= self.batch_size:
            self._flush()

    def _take(self, queue: list[tuple[str, str, np.ndarray, str]], feats: np.ndarray) -> None:
        import open_clip  # noqa: PLC0415

        tok = self._tokenizer or open_clip.get_tokenizer(self.model_name)
        with torch.inference_mode():
            text = self.model().encode_text(tok([q[3] for q in queue]).to(self.device)).float().cpu().numpy()
        self.scores.extend(R.clip_scores(feats, text).tolist())

    def compute(self) -> SetValue:
        """Mean CLIP score over the captioned outputs with a percentile bootstrap CI over them; ``n``: how many
        were scored. :class:`NotApplicable` when no output had a caption."""
        self._flush()
        if not self.scores:
            if self.uncaptioned:
                raise NotApplicable(f"not applicable: clip_score needs captions, and none of the {self.uncaptioned} "
                                    "outputs had one (the reference set's caption column is empty)")
            raise NotApplicable("not applicable: no outputs with captions")
        s = np.asarray(self.scores)
        lo, hi = bootstrap_statistic(len(s), lambda idx: float(s[idx].mean()), self.n_bootstrap, seed=self.seed)
        detail = f"open_clip {self.model_name}"
        if self.uncaptioned:
            detail += (f"; {self.uncaptioned} of {self.uncaptioned + len(s)} outputs had no caption and were not "
                       f"scored (n = {len(s)} scored)")
        return SetValue(float(s.mean()), lo, hi, n=len(s), detail=detail)


#: the CLIP model of the CMMD paper (Jayasumana et al. 2024) and of google-research/cmmd
#: (``openai/clip-vit-large-patch14-336``); qa's weights name for it: ``OFFICIAL[CMMD_PAPER_MODEL]``
CMMD_PAPER_MODEL = "ViT-L-14-336"


class CMMD(_CLIPSetMetric):
    """CMMD: MMD^2 x 1000 between CLIP embeddings of outputs and references (RBF sigma 10), >= 0; lower is better.

    The formula is the paper's (the official code's biased V-statistic), but the default embedding model is CLIP
    ViT-B/32 (``clip-vit-b-32-openai``), not the paper's ViT-L/14 at 336 px: qa's default values are comparable
    with each other, not with published CMMD numbers. For the paper's model build it with
    ``CMMD(model_name="ViT-L-14-336")`` (weights ``clip-vit-l-14-336-openai``: ``qa weights fetch`` or ``import``),
    or register a subclass that sets ``model_name = "ViT-L-14-336"`` under another metric name (entry-point group
    ``qa.metrics``); the run's catalogue ``cmmd`` stays ViT-B/32. The row's detail names the model.
    """

    name = "cmmd"
    version = "2"  # 2: each distinct output counted once (a deterministic decoder's two seeds were 2n)
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = ("reference",)
    description = ("CMMD formula (Jayasumana et al. 2024): RBF sigma 10 MMD^2 x 1000 on L2-normalised CLIP ViT-B/32 "
                   "embeddings; the paper uses ViT-L/14@336, so values compare with published CMMD only when built "
                   "with model_name='ViT-L-14-336'")

    def _reset_state(self) -> None:
        self.emb: dict[str, list[np.ndarray]] = {"cand": [], "ref": []}

    def _export(self) -> dict[str, object]:
        return {role: [e.copy() for e in embs] for role, embs in self.emb.items()}

    def _merge(self, stats: dict[str, object]) -> None:
        for role in ("cand", "ref"):
            self.emb[role].extend(np.asarray(e) for e in stats[role])  # type: ignore[attr-defined]

    def update(self, sample: ImageSample) -> None:
        """Queue the output and (once per distinct image) its reference."""
        self._check_output(sample)
        self._queue.append(("cand", pixels_sha256(sample.output), to_uint8(sample.output), ""))
        ref = new_reference(sample, self._seen_refs)
        if ref is not None:
            self._queue.append(("ref", *ref, ""))
        if len(self._queue) >= self.batch_size:
            self._flush()

    def _take(self, queue: list[tuple[str, str, np.ndarray, str]], feats: np.ndarray) -> None:
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        for role in ("cand", "ref"):
            rows = [i for i, q in enumerate(queue) if q[0] == role]
            if rows:
                self.emb[role].append(feats[rows])

    def compute(self) -> SetValue:
        """CMMD with a bias-corrected percentile bootstrap CI over the outputs (references held fixed).

        Like FID and KID: fewer than 2 reference images is not applicable, fewer than 2 outputs an error (one
        image against one is no distribution distance). The interval: resampling repeats outputs, and each
        repeat adds a kernel value of 1 to the V-statistic, which moves the plain percentile interval above the
        value at small n; :func:`qa.bootstrap.centred_bootstrap` removes that shift.
        """
        self._flush()
        n_ref = sum(len(e) for e in self.emb["ref"])
        n_out = sum(len(e) for e in self.emb["cand"])
        if n_ref < 2:
            raise NotApplicable(f"not applicable: cmmd needs at least 2 reference images, have {n_ref}")
        if n_out < 2:
            raise MetricInputError(f"cmmd: needs at least 2 outputs, have {n_out}")
        x = np.concatenate(self.emb["ref"]).astype(np.float64)
        y = np.concatenate(self.emb["cand"]).astype(np.float64)
        value = R.cmmd(x, y)
        kxx = R.rbf_gram(x, x, 10.0).mean()
        kyy, kxy = R.rbf_gram(y, y, 10.0), R.rbf_gram(x, y, 10.0)

        def stat(idx: np.ndarray) -> float:
            return float(1000.0 * (kxx + kyy[np.ix_(idx, idx)].mean() - 2 * kxy[:, idx].mean()))

        lo, hi = centred_bootstrap(y.shape[0], stat, value, self.n_bootstrap, seed=self.seed)
        lo = max(lo, 0.0)  # a V-statistic MMD^2 is >= 0; NaN stays NaN
        paper = "" if self.model_name == CMMD_PAPER_MODEL else f" (published CMMD uses {CMMD_PAPER_MODEL})"
        return SetValue(value, lo, hi, n=y.shape[0],
                        detail=f"open_clip {self.model_name}{paper}; sigma 10; x1000; bias-corrected percentile CI")
