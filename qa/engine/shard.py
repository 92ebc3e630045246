"""Processing one shard of cases: encode, decode with every seed, re-encode, score. No storage here.

Failures stay local: a case whose image is bad, whose decode raises or breaks the decoder contract
(:mod:`qa.engine.decoder_contract`: NaN/Inf, two seeds of a deterministic decoder that differ, an output that depends
on its batch mates), or whose metric raises becomes error rows naming the case, and the rest of the shard goes on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from qa.decoders.base import DecodeBatch, Decoder
from qa.engine import decoder_contract as contract
from qa.engine import pixels as full_pixels
from qa.engine.cases import Case, CaseSamples
from qa.engine.decoder_contract import to_numpy, to_tensor
from qa.engine.groups import Group, group_pixels, scoring_device
from qa.engine.shard_features import set_metric_samples
from qa.imageio import png_bytes
from qa.metrics.base import ALL_SEEDS, ImageMetric, ImageSample, Metric, SetMetric
from qa.metrics.scoring import score_sample
from qa.store.records import RegionRow, ResultRow, TiledImage

#: longest side of thumbnails stored for reports, in pixels
THUMB_SIDE = 160
#: fixed scale of the maps a run stores (its thumbnails): map value v (in the metric's own unit) is stored as
#: brightness min(v / STORED_MAP_SCALE, 1), so the report reads the value back; not the display scale of
#: ``qa score --maps`` (:data:`qa.metrics.invented.metrics.MAP_FULL_SCALE`, brightened for the eye)
STORED_MAP_SCALE = 1.0
#: the image size (pixels) a decoder's ``max_batch`` is declared for: 256 x 256 (:meth:`ShardRunner.batch_for`)
BATCH_PIXELS_AT = 256 * 256


@dataclass
class DecodedCase:
    """What decoding produced for one case, per seed (numpy, on the CPU).

    ``outputs``: seed -> output float32 (H, W, 3) in [0, 1]; ``reencoded``: seed -> ``encoder.encode(output)``
    (C, h, w); ``redecoded``: seed -> D_baseline(E(output)) (H, W, 3) or None; ``baseline_by_seed``: seed -> the
    decoder's baseline for that seed (H, W, 3); ``latent``: the latent decoded (C, h, w), None without one;
    ``latent_by_seed``: seed -> the source pipeline's latent (generate track); ``error``: why the case failed.
    """

    outputs: dict[int, np.ndarray] = field(default_factory=dict)
    reencoded: dict[int, np.ndarray] = field(default_factory=dict)
    redecoded: dict[int, np.ndarray | None] = field(default_factory=dict)
    baseline_by_seed: dict[int, np.ndarray] = field(default_factory=dict)
    latent: np.ndarray | None = None
    latent_by_seed: dict[int, np.ndarray] = field(default_factory=dict)
    error: str = ""

    def sample_latent(self, seed: int) -> np.ndarray | None:
        """The latent a seed's output is compared with: the source pipeline's for that seed, else the decoded one."""
        return self.latent_by_seed.get(seed, self.latent)


@dataclass
class ShardOutput:
    """Everything one shard produced, committed to the store in one transaction."""

    rows: list[ResultRow] = field(default_factory=list)
    images: list[tuple[str, int, str, bytes]] = field(default_factory=list)  # case, seed, kind, png
    n_cases: int = 0
    regions: list[RegionRow] = field(default_factory=list)  # the strongest regions of each case's map
    tiled: list[TiledImage] = field(default_factory=list)  # full-resolution images (qa.engine.pixels)


def effective_seeds(decoder: Decoder, seeds: list[int]) -> list[int]:
    """The seeds a run decodes: all of them for a stochastic decoder; for a deterministic one the first two,
    so that its seed variance is measured (and must be zero) rather than assumed."""
    return list(seeds) if decoder.stochastic else list(seeds[:2])


class ShardRunner:
    """Runs a decoder and metrics over cases. ``progress`` is called with the number of cases finished, ``stage``
    with what a shard is doing ("decoding", "scoring"): a shard of 2K-4K images decodes for minutes."""

    def __init__(
        self,
        decoder: Decoder,
        metrics: list[Metric],
        seeds: list[int],
        batch_size: int | None = None,
        thumbnails: bool = True,
        progress: Callable[[int], None] | None = None,
        stage: Callable[[str], None] | None = None,
    ) -> None:
        self.decoder = decoder
        self.image_metrics = [m for m in metrics if isinstance(m, ImageMetric)]
        self.set_metrics = [m for m in metrics if isinstance(m, SetMetric)]
        self.seeds = effective_seeds(decoder, seeds)
        self.batch_size = max(1, batch_size or decoder.max_batch)
        self.batch_given = batch_size is not None  # --batch-size: as given at every size
        self.thumbnails = thumbnails
        self.progress, self.stage = progress or (lambda n: None), stage or (lambda s: None)
        self.unavailable = {m.name: m.unavailable_reason() for m in self.image_metrics}
        # a set metric whose model or weights are missing is stored as missing with that reason at the end
        # (RunEngine.set_metric_result checks it first), so it is not fed: feeding it would try to load the
        # missing model once per shard
        self.fed_set_metrics = [m for m in self.set_metrics if not m.unavailable_reason()]
        #: the most sample pixels scored as one group (:mod:`qa.engine.groups`; 0: every case alone)
        self.group_pixels = group_pixels(scoring_device(self.image_metrics))
        #: case id -> the pixel hash of its reference where the store holds its tiles already (set by the local
        #: engine before each shard: ``qa.engine.pixels.stored_references``); empty: every reference is encoded
        self.stored_references: dict[str, str] = {}

    # -- decoding -------------------------------------------------------------------------------------------
    def batch_for(self, size: tuple[int, int]) -> int:
        """Cases per forward pass at ``size`` (H, W, the reference's): ``--batch-size`` as given; else the decoder's
        ``max_batch``, declared for 256 x 256, as a budget of pixels (8 at 256 px is 2 at 512, 1 at 1024 and up:
        the 256-px count at 2048 px held 15 GB in one taef2 batch)."""
        if self.batch_given:
            return self.batch_size
        return max(1, min(self.batch_size, self.batch_size * BATCH_PIXELS_AT // max(1, size[0] * size[1])))

    def _decode_cases(self, cases: list[Case]) -> dict[str, DecodedCase]:
        """Encode + decode every seed; one :class:`DecodedCase` per case id (``error`` set where it failed)."""
        results = {c.case_id: DecodedCase() for c in cases}
        by_size: dict[tuple[int, int], list[tuple[Case, np.ndarray]]] = {}
        for c in cases:
            if c.pixels is None:
                raise ValueError(f"{c.case_id}: image not loaded (pass loaded cases only)")
            by_size.setdefault((int(c.pixels.shape[0]), int(c.pixels.shape[1])), []).append((c, c.pixels))
        for size, group in by_size.items():
            n = self.batch_for(size)
            for start in range(0, len(group), n):
                chunk = group[start : start + n]
                try:
                    self._decode_chunk(chunk, size, results)
                except DECODER_FAILURES:  # noqa: BLE001 - isolate the failing case(s) by retrying one by one
                    if len(chunk) == 1:
                        results[chunk[0][0].case_id].error = _describe_exception(chunk[0][0].case_id)
                        continue
                    for item in chunk:
                        try:
                            self._decode_chunk([item], size, results)
                        except DECODER_FAILURES:  # noqa: BLE001
                            results[item[0].case_id].error = _describe_exception(item[0].case_id)
        self._check_batch_invariance(by_size, results)
        return results

    def _check_batch_invariance(self, by_size: dict[tuple[int, int], list[tuple[Case, np.ndarray]]],
                                results: dict[str, DecodedCase]) -> None:
        """Once per shard: the last case of its first batch of several (not the first: one noise draw for a whole
        batch gives the first item what it gets alone), decoded alone with the first seed, must give its batched
        output (:func:`qa.engine.decoder_contract.batch_dependent`); else that batch's cases fail."""
        seed, dec = self.seeds[0], self.decoder
        for size, group in by_size.items():
            mates = group[: self.batch_for(size)]
            last = results[mates[-1][0].case_id]
            if len(mates) < 2 or last.error or seed not in last.outputs:
                continue
            case, pixels = mates[-1]
            try:
                alone = contract.decode_alone(dec, case.case_id, case.caption, pixels, size, seed)
            except DECODER_FAILURES:  # noqa: BLE001 - it decoded in its batch; alone it fails: that is the finding
                why = f"decoding {case.case_id} alone failed where its batch of {len(mates)} did: " + \
                    _describe_exception(case.case_id)
            else:
                why = contract.batch_dependent(dec, alone, last.outputs[seed], case.case_id, len(mates)) or ""
            for c, _ in mates:
                if why and not results[c.case_id].error:
                    results[c.case_id].error = f"{c.case_id}: {why}"
            return

    def _decode_chunk(self, chunk: list[tuple[Case, np.ndarray]], size: tuple[int, int],
                      results: dict[str, DecodedCase]) -> None:
        dec = self.decoder
        cases = [c for c, _ in chunk]
        refs = to_tensor([px for _, px in chunk], dec.device)
        encoder = dec.encoder
        with torch.inference_mode():
            latents = contract.latents_of(dec, refs)
            batch = DecodeBatch(
                case_ids=[c.case_id for c in cases], captions=[c.caption for c in cases], latents=latents, size=size
            )
            per_seed: dict[int, torch.Tensor] = {}
            ids = batch.case_ids
            for seed in self.seeds:
                out = contract.check_output(dec.decode(batch, seed), batch, size).float()
                failed = contract.out_of_range(torch.nan_to_num(out), ids, seed) | contract.non_finite(out, ids, seed)
                per_seed[seed] = torch.nan_to_num(out).clamp(0.0, 1.0)
                failed = contract.unreproduced(dec, per_seed[seed], per_seed[self.seeds[0]], ids, seed,
                                               self.seeds[0]) | failed  # NaN/Inf said first
                for case_id, why in failed.items():
                    results[case_id].error = results[case_id].error or why
            reenc: dict[int, torch.Tensor] = {}
            redec: dict[int, torch.Tensor] = {}
            # a source pipeline's latent and the baseline for the same prompt/latent and seed (where the decoder has them)
            src = {s: z for s in per_seed if (z := dec.source_latents(batch, s)) is not None}
            seed_base, bad_base = contract.checked_baselines(contract.baselines(dec, batch, list(per_seed)), batch)
            for case_id, why in bad_base.items():
                results[case_id].error = results[case_id].error or why
            if encoder is not None and latents is None:
                for seed in src:
                    reenc[seed] = encoder.encode(per_seed[seed])
            if encoder is not None and latents is not None:
                first = next(iter(per_seed))
                for seed, out in per_seed.items():
                    if seed != first and torch.equal(out, per_seed[first]):
                        # bit-identical output (a deterministic decoder's second seed): E and D_baseline of the
                        # same pixels give the same tensors, so they are not run again
                        reenc[seed] = reenc[first]
                        if first in redec:
                            redec[seed] = redec[first]
                        continue
                    reenc[seed] = encoder.encode(out)
                    if seed in seed_base:  # D_baseline(E(output)): what the latent sees
                        again = dec.baseline(DecodeBatch(batch.case_ids, batch.captions, reenc[seed], size), seed)
                        if again is not None:
                            redec[seed] = again.clamp(0.0, 1.0)
        lat_np = latents.float().cpu().numpy() if latents is not None else None
        base_arrays: dict[int, list[np.ndarray]] = {}  # id(tensor) -> arrays: a seed-independent baseline converts once
        for seed, out in per_seed.items():
            outs = to_numpy(out)
            base_np = None
            if seed in seed_base:
                key = id(seed_base[seed])
                if key not in base_arrays:
                    base_arrays[key] = to_numpy(seed_base[seed])  # in [0, 1]: decoder_contract.checked_baselines
                base_np = base_arrays[key]
            src_np = list(src[seed].float().cpu().numpy()) if seed in src else None
            re_np = reenc[seed].float().cpu().numpy() if seed in reenc else None
            redec_np = to_numpy(redec[seed]) if seed in redec else None
            for i, case in enumerate(cases):
                r = results[case.case_id]
                r.outputs[seed] = outs[i]
                r.redecoded[seed] = redec_np[i] if redec_np is not None else None
                if re_np is not None:
                    r.reencoded[seed] = re_np[i]
                if lat_np is not None:
                    r.latent = lat_np[i]
                if base_np is not None:
                    r.baseline_by_seed[seed] = base_np[i]
                if src_np is not None:
                    r.latent_by_seed[seed] = src_np[i]

    # -- scoring ----------------------------------------------------------------------------------------------
    def run(self, cases: list[Case]) -> ShardOutput:
        """Process ``cases``; never raises for a bad case."""
        out = ShardOutput(n_cases=len(cases))
        good = [c for c in cases if not c.error and c.pixels is not None]
        for c in cases:
            if c.error or c.pixels is None:
                self._error_rows(out, c.case_id, c.error or f"{c.case_id}: image not loaded")
                self.progress(1)
        self.stage("decoding")
        decoded = self._decode_cases(good) if good else {}
        self.stage("scoring")
        group: Group[tuple[Case, DecodedCase, CaseSamples]] = Group(self.group_pixels)
        for case in good:
            r = decoded[case.case_id]
            if r.error:
                group = self._score_group(out, group)
                self._error_rows(out, case.case_id, r.error)
                self.progress(1)
                continue
            cs = self._case_samples(case, r)
            first = cs.samples[cs.first_seed].output
            size, pixels = (int(first.shape[0]), int(first.shape[1])), sum(s.output.size // 3 for s in cs.unique)
            if not group.takes(size, pixels):
                group = self._score_group(out, group)
            group.add((case, r, cs), size, pixels)
        self._score_group(out, group)
        return out

    def _score_group(self, out: ShardOutput, group: Group[tuple[Case, DecodedCase, CaseSamples]]
                     ) -> Group[tuple[Case, DecodedCase, CaseSamples]]:
        """Score a group's cases (every metric prepared once over all of their samples); an empty group to fill
        next."""
        if group.members:
            self._prepare([s for _, _, cs in group.members for s in cs.unique])
            for case, r, cs in group.members:
                self._score_case(out, case, r, cs)
                self.progress(1)
        return Group(self.group_pixels)

    def _error_rows(self, out: ShardOutput, case_id: str, message: str) -> None:
        out.rows.append(ResultRow(case_id, ALL_SEEDS, "case", None, "error", message))
        for m in self.image_metrics:
            seeds = [ALL_SEEDS] if m.level == "case" else self.seeds
            for seed in seeds:
                out.rows.append(ResultRow(case_id, seed, m.name, None, "error", message, m.version))

    def _case_samples(self, case: Case, r: DecodedCase) -> CaseSamples:
        """A decoded case's samples, one per seed (what every metric scores)."""
        outputs = r.outputs
        pixels = case.pixels
        if pixels is None:  # run() scores loaded cases only
            raise ValueError(f"{case.case_id}: image not loaded")
        reference: np.ndarray | None = pixels
        note = ""
        if not self.decoder.reference_aligned:
            reference, note = None, f"{self.decoder.track} track: no pixel-aligned reference"
        seed_list = list(outputs.values())
        by_seed = r.baseline_by_seed
        seed_bases = [by_seed[s] for s in outputs] if all(s in by_seed for s in outputs) else []
        samples = {
            seed: ImageSample(
                case_id=case.case_id,
                output=img,
                reference=reference,
                caption=case.caption,
                seed=seed,
                latent=r.sample_latent(seed),
                reencoded=r.reencoded.get(seed),
                seed_outputs=seed_list,
                baseline=by_seed.get(seed),
                reference_note=note,
                # the file hash names the reference's pixels only when the case was not cropped (feature cache key)
                reference_sha256="" if any("cropped" in n for n in case.notes) else case.image_sha256,
                redecoded=r.redecoded.get(seed),
                real=pixels,  # the reference distribution (FID/KID/CMMD), also on the generate track
                seed_baselines=seed_bases,
            )
            for seed, img in outputs.items()
        }
        return CaseSamples.of(samples, pixels)

    def _score_case(self, out: ShardOutput, case: Case, r: DecodedCase, cs: CaseSamples) -> None:
        """Score a case's samples (its group prepared) and keep its thumbnails and full-resolution images."""
        outputs, samples, first_seed, same = r.outputs, cs.samples, cs.first_seed, cs.same
        pixels, reference, by_seed = cs.pixels, samples[first_seed].reference, r.baseline_by_seed
        out.rows.append(ResultRow(case.case_id, ALL_SEEDS, "case", 1.0, "ok", "; ".join(case.notes)))
        maps: dict[str, np.ndarray] = {}  # metric -> its map of the first seed's output (or across seeds)
        extras: dict[str, dict[str, float]] = {}  # metric -> its side numbers of the first seed's output
        for m in self.image_metrics:
            targets = [(ALL_SEEDS, samples[first_seed])] if m.level == "case" else list(samples.items())
            first_row: ResultRow | None = None
            for seed, sample in targets:
                if seed in same and first_row is not None:
                    # every input of this metric equals the first seed's: the (deterministic) metric gives the
                    # same row (value, status, reason), so it is copied rather than computed again
                    out.rows.append(replace(first_row, seed=seed))
                    continue
                row = self._score_one(m, sample, seed, out, first_seed, maps, extras)
                if seed == first_seed:
                    first_row = row
                out.rows.append(row)
        for sm in self.fed_set_metrics:
            for sample in set_metric_samples(cs):
                try:
                    sm.update(sample)
                except Exception as exc:  # noqa: BLE001 - recorded at compute time as an error
                    sm.record_update_error(f"{case.case_id}: {exc}")
        if self.thumbnails:
            out.images.append((case.case_id, ALL_SEEDS, "reference", png_bytes(pixels, THUMB_SIDE)))
            out.images.append((case.case_id, first_seed, "output", png_bytes(outputs[first_seed], THUMB_SIDE)))
            if not self.decoder.reference_aligned and by_seed.get(first_seed) is not None:
                # the source pipeline's image of the same prompt and seed: what the output is compared with
                out.images.append((case.case_id, first_seed, "baseline", png_bytes(by_seed[first_seed], THUMB_SIDE)))
            regions, tiled = full_pixels.keep(case.case_id, first_seed, outputs[first_seed],
                                              {"reference": reference, "baseline": by_seed.get(first_seed)}, maps,
                                              extras, self.stored_references.get(case.case_id))
            out.regions += regions
            out.tiled += tiled

    def _prepare(self, samples: list[ImageSample]) -> None:
        """Let each metric batch its work over the samples of a scoring group (:mod:`qa.engine.groups`) before
        scoring them, e.g. the invented-detail family analyses each pair once for all of its metrics. A failure
        here is ignored: ``compute`` redoes the work per sample and reports its own error."""
        for m in self.image_metrics:
            if not self.unavailable[m.name]:
                try:
                    m.prepare(samples)
                except Exception:  # noqa: BLE001, S110 - compute() reports the error per sample
                    pass

    def _score_one(self, m: ImageMetric, sample: ImageSample, seed: int, out: ShardOutput, first_seed: int,
                   maps: dict[str, np.ndarray], extras: dict[str, dict[str, float]]) -> ResultRow:
        scored = score_sample(m, sample, self.unavailable[m.name])
        if scored.extra and (seed == first_seed or seed == ALL_SEEDS):
            extras[m.name] = scored.extra
        if scored.map is not None and self.thumbnails and (seed == first_seed or seed == ALL_SEEDS):
            maps[m.name] = scored.map
            out.images.append((sample.case_id, seed, f"map:{m.name}",
                               png_bytes(scored.map, THUMB_SIDE, scale=1.0 / STORED_MAP_SCALE)))
        return ResultRow(sample.case_id, seed, m.name, scored.value, scored.status, scored.detail, m.version)


#: what a decoder may raise that fails its cases, not the run: any error, and ``SystemExit`` (a library calling
#: ``sys.exit()`` inside ``decode`` would otherwise end the whole run without a word); ``KeyboardInterrupt``
#: still stops the run (Ctrl-C: the run is marked interrupted and ``--resume`` finishes it)
DECODER_FAILURES = (Exception, SystemExit)


def _describe_exception(case_id: str) -> str:
    """``CASE: decoder failed: Type: message; hint: ...`` of the exception being handled, on one line: the
    message and (for qa's own errors) the hint, never one without the other."""
    exc = sys.exc_info()[1]
    if exc is None:
        return f"{case_id}: decoder failed: unknown error"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{case_id}: decoder failed: {type(exc).__name__}: {'; '.join(lines) or repr(exc)}"
