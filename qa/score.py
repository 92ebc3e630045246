"""``qa score``: score images that already exist (no decoder) against a reference folder.

Pairing: a candidate file pairs with the reference file of the same relative path *without extension*
(``a/b.png`` pairs with ``a/b.jpg``), so lossless re-exports of either side still pair. Several candidate
folders are several samples (seeds) of one decoder: per-image metrics are averaged over the seeds that were
readable (the ``detail`` column says so, and names a folder without the image) and level "case" metrics
(``seed_variance``) use all of them. A reference that no candidate folder holds gets ``error`` rows (its relative
path in ``image``): a decoder that produced nothing for it is not left out of the file.

Output: one row per (image, metric) with columns ``image`` (the candidate's relative path), ``metric``,
``value``, ``status`` (``ok`` / ``missing`` / ``error``), ``detail``; written as ``.parquet`` or ``.csv``.
A candidate without a reference, or whose reference has another size, gets the reference-free metrics only (the
others are ``missing`` with the reason); an unreadable image becomes ``error`` rows, never a crash. Each metric is
scored as ``qa run`` scores it (:mod:`qa.metrics.scoring`): one that raises or returns NaN gives an ``error`` row.
With ``maps``, one grayscale PNG per image (same relative path, ``.png``), brightness = invented-detail map /
:data:`qa.metrics.invented.metrics.MAP_FULL_SCALE` (fixed, so maps compare across images), at the candidate's size.
``encoder="area-xN"``: latent z = area downsampling of the reference by N, re-encoded = that of the candidate,
baseline = bicubic xN of z and redecoded = bicubic xN of the re-encoded candidate (the plain decoder of a pixel
upsampler), which enables ``latent_consistency``, ``hf_energy_ratio_baseline`` and the invented-detail split.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.averaging import mean_of
from qa.errors import BadImageError, QAError
from qa.imageio import IMAGE_SUFFIXES, load_image, save_png
from qa.metrics.base import ImageMetric, ImageSample, Metric, MetricValue
from qa.metrics.scoring import score_sample
from qa.plain_text import csv_frame

COLUMNS = ("image", "metric", "value", "status", "detail")
MAP_METRIC = "invented_detail"


@dataclass
class ScoreSummary:
    """What :func:`score_folders` did: counts of images and rows by status, files written, notes."""

    images: int
    rows: int
    ok: int
    missing: int
    error: int
    out: Path
    maps_written: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """What `qa score` prints: where the rows went, how many of each status, the maps and notes."""
        from qa.metrics.invented.metrics import MAP_FULL_SCALE

        maps = (f"; {self.maps_written} maps (brightness: the invented-detail amplitude, luma RMS, linear from 0; "
                f"white = {MAP_FULL_SCALE:g} or more)" if self.maps_written else "")
        return (f"wrote {self.rows} rows for {self.images} images to {self.out}: {self.ok} ok, {self.missing} "
                f"missing, {self.error} error{maps}" + "".join(f"\nnote: {n}" for n in self.notes))


def _images(folder: Path) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Image files under ``folder`` keyed by relative posix path without extension, and the refused ones (a
    symbolic link that leads outside ``folder``, as ``qa refset build`` refuses) with the reason. Links to
    folders are not followed."""
    root = folder.resolve()
    found: dict[str, list[Path]] = {}
    refused: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            key = p.relative_to(folder).with_suffix("").as_posix()
            if p.is_symlink() and not p.resolve().is_relative_to(root):
                refused[key] = f"{p}: symbolic link to {p.resolve()} outside {folder}; refused"
                continue
            if p.is_file():
                found.setdefault(key, []).append(p)
    return found, refused


@dataclass
class _AreaEncoding:
    factor: int

    def encode(self, img: np.ndarray) -> np.ndarray:
        import torch

        from qa.decoders.simple import AreaDownsample

        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float()
        return AreaDownsample(self.factor).encode(t)[0].numpy()

    def decode(self, latent: np.ndarray) -> np.ndarray:
        import torch

        from qa.decoders.base import DecodeBatch
        from qa.decoders.simple import BicubicDecoder

        batch = DecodeBatch(case_ids=["x"], captions=[""], latents=torch.from_numpy(latent)[None].float())
        out = BicubicDecoder(factor=self.factor).decode(batch, 0)[0].numpy()
        return np.ascontiguousarray(out.transpose(1, 2, 0))


def parse_encoder(name: str | None) -> _AreaEncoding | None:
    """``area-xN`` (N >= 1) -> an area-downsampling encoder with a bicubic baseline decoder; None -> None."""
    if name is None:
        return None
    m = re.fullmatch(r"area-x(\d+)", name)
    if m is None or int(m.group(1)) < 1:
        raise QAError(f"unknown encoder {name!r} for qa score", "use area-xN (e.g. area-x4) for pixel upsamplers")
    return _AreaEncoding(int(m.group(1)))


class _Broken(ImageMetric):
    """Stands in for a registered metric whose constructor failed: every row is an error with the reason."""

    needs = ()

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def compute(self, sample: ImageSample) -> MetricValue:
        raise QAError(self.reason)


def _metrics(names: list[str] | None) -> tuple[list[Metric], list[str]]:
    from qa.metrics.catalog import METRICS

    chosen = names if names is not None else METRICS.names()
    metrics: list[Metric] = []
    notes: list[str] = []
    for n in chosen:
        try:
            m = METRICS.create(n)
        except Exception as exc:  # a metric that cannot even be built gives error rows, not a dead run
            metrics.append(_Broken(n, f"cannot create metric: {type(exc).__name__}: {exc}"))
            continue
        if isinstance(m, ImageMetric):
            metrics.append(m)
        elif names is not None:
            raise QAError(f"metric {n!r} is a set metric; qa score writes per-image rows", "use qa run for it")
        else:
            notes.append(f"set metric {n} skipped (qa score writes per-image rows)")
    return metrics, notes


def _validate(reference: Path, candidates: list[Path], out: Path) -> None:
    if not reference.is_dir():
        raise QAError(f"reference folder {reference} does not exist or is not a folder")
    if not candidates:
        raise QAError("qa score needs at least one --candidate folder")
    for c in candidates:
        if not c.is_dir():
            raise QAError(f"candidate folder {c} does not exist or is not a folder")
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise QAError(f"--out {out}: the file must end in .parquet or .csv")


def _row(image: str, metric: str, value: float, status: str, detail: str) -> dict[str, object]:
    return {"image": image, "metric": metric, "value": value, "status": status, "detail": detail}


def _score_one(metric: ImageMetric, samples: list[ImageSample]) -> tuple[float, str, str, np.ndarray | None]:
    """(value, status, detail, map) of one metric over the seed samples of one image: each seed scored as the
    engine scores it (:func:`qa.metrics.scoring.score_sample`); the first seed that is not ``ok`` decides the row."""
    unavailable = metric.unavailable_reason()
    runs = samples[:1] if metric.level == "case" else samples
    values: list[float] = []
    maps: list[np.ndarray] = []
    details: list[str] = []
    for s in runs:
        scored = score_sample(metric, s, unavailable)
        if scored.value is None:
            return math.nan, scored.status, scored.detail, None
        values.append(scored.value)
        details.append(scored.detail)
        if scored.map is not None:
            maps.append(scored.map)
    parts = [f"mean over {len(values)} seeds"] if len(values) > 1 else []
    if details[0]:
        parts.append(details[0])  # the metric's own detail, as the engine stores it (of the first seed)
    detail = "; ".join(parts)
    mean_map = np.mean(maps, axis=0) if len(maps) == len(values) and maps else None
    return mean_of(values, metric.averaged), "ok", detail, mean_map


def score_folders(
    reference: Path,
    candidates: list[Path],
    out: Path,
    maps: Path | None = None,
    metrics: list[str] | None = None,
    encoder: str | None = None,
) -> ScoreSummary:
    """Score every candidate image against its reference and write the rows (and maps); see the module doc.

    ``metrics``: registry names (None = every registered per-image metric). ``encoder``: ``area-xN`` or None.
    Raises :class:`QAError` for a missing folder, a bad ``out`` suffix, an unknown metric or encoder; every
    per-image problem is a row instead.
    """
    reference, out = Path(reference), Path(out)
    candidates = [Path(c) for c in candidates]
    _validate(reference, candidates, out)
    enc = parse_encoder(encoder)
    chosen, notes = _metrics(metrics)
    refs, refs_refused = _images(reference)
    listed = [_images(c) for c in candidates]
    cands = [found for found, _ in listed]
    # every reference is scored too: one that no candidate folder holds is an error row, never left out
    keys = sorted(set().union(*cands, *(refused for _, refused in listed), refs, refs_refused))
    rows: list[dict[str, object]] = []
    maps_written = 0
    for key in keys:
        present = [(c, found[key]) for c, found in zip(candidates, cands, strict=True) if key in found]
        problems = [refused[key] for _, refused in listed if key in refused]
        absent = [str(c) for c, found, (_, refused) in zip(candidates, cands, listed, strict=True)
                  if key not in found and key not in refused]
        lacking = f"no candidate file {key}.* in {', '.join(absent)}" if absent else ""
        if not present:
            image = refs[key][0].relative_to(reference).as_posix() if refs.get(key) and not problems else key
            rows += [_row(image, m.name, math.nan, "error", "; ".join([*problems, lacking] if lacking else problems))
                     for m in chosen]
            continue
        image = present[0][1][0].relative_to(present[0][0]).as_posix()
        outputs: list[np.ndarray] = []
        read: list[str] = []  # how the files were read (16-bit, alpha, palette...): said in every row's detail
        for folder, files in present:
            if len(files) > 1:
                problems.append(f"{folder}: several files for {key}: {', '.join(f.name for f in files)}")
                continue
            try:
                loaded = load_image(files[0])
            except BadImageError as exc:
                problems.append(str(exc))
                continue
            outputs.append(loaded.pixels)
            read += [f"candidate read: {n}" for n in loaded.notes if f"candidate read: {n}" not in read]
        if not outputs or (problems and len(outputs) < len(present)):
            detail = "; ".join(problems) or f"no readable candidate for {key}"
            rows += [_row(image, m.name, math.nan, "error", detail) for m in chosen]
            continue
        samples = _samples(key, outputs, refs.get(key), reference, enc, refs_refused.get(key, ""), read)
        for m in chosen:
            value, status, detail, mp = _score_one(m, samples)  # type: ignore[arg-type]
            # a seed folder without this image: the value rests on the others, and says so
            rows.append(_row(image, m.name, value, status, "; ".join(d for d in (detail, lacking, *read) if d)))
            if maps is not None and m.name == MAP_METRIC and mp is not None:
                from qa.metrics.invented.metrics import MAP_FULL_SCALE

                # key: the relative path without its suffix; "shot.1" keeps its ".1" (with_suffix cut it, and
                # shot.1 and shot.2 overwrote one map)
                save_png(np.clip(mp / MAP_FULL_SCALE, 0.0, 1.0), Path(maps) / f"{key}.png")
                maps_written += 1
    if maps is not None and MAP_METRIC not in {m.name for m in chosen}:
        notes.append(f"no maps written: --maps needs the {MAP_METRIC} metric")
    _write(rows, out)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "missing", "error")}
    return ScoreSummary(len(keys), len(rows), counts["ok"], counts["missing"], counts["error"], out,
                        maps_written, notes)


def _samples(
    key: str, outputs: list[np.ndarray], ref_files: list[Path] | None, ref_dir: Path, enc: _AreaEncoding | None,
    refused: str = "", read: list[str] | None = None,
) -> list[ImageSample]:
    """One ImageSample per seed output, with the reference (and latent quantities) where available; how the
    reference was read goes into ``read``."""
    reference: np.ndarray | None = None
    note = ""
    if refused:
        note = refused
    elif not ref_files:
        note = f"no reference file {key}.* in {ref_dir}"
    elif len(ref_files) > 1:
        note = f"several reference files for {key}: {', '.join(f.name for f in ref_files)}"
    else:
        try:
            ref_loaded = load_image(ref_files[0])
            reference = ref_loaded.pixels
            if read is not None:
                read += [f"reference read: {n}" for n in ref_loaded.notes]
        except BadImageError as exc:
            note = f"reference unreadable: {exc}"
        if reference is not None and reference.shape != outputs[0].shape:
            h, w = reference.shape[:2]
            note = f"reference is {w}x{h}, candidate {outputs[0].shape[1]}x{outputs[0].shape[0]} (qa resizes nothing)"
            reference = None
    shapes = {o.shape for o in outputs}
    latent = baseline = None
    if enc is not None and reference is not None:
        h, w = reference.shape[:2]
        if h % enc.factor == 0 and w % enc.factor == 0:
            latent = enc.encode(reference)
            baseline = enc.decode(latent)
    samples = []
    for seed, out in enumerate(outputs):
        reenc = redec = None
        if latent is not None:
            reenc = enc.encode(out)  # type: ignore[union-attr]
            redec = enc.decode(reenc)  # type: ignore[union-attr]
        samples.append(ImageSample(
            case_id=key, output=out, reference=reference, seed=seed, latent=latent, reencoded=reenc,
            seed_outputs=outputs if len(shapes) == 1 else [], baseline=baseline, reference_note=note,
            redecoded=redec,
        ))
    return samples


def _write(rows: list[dict[str, object]], out: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["value"] = df["value"].astype("float64")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        df.to_parquet(out, index=False)
    else:
        csv_frame(df).to_csv(out, index=False)  # a formula-like file name is text in a spreadsheet
