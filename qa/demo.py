"""``qa demo``: the embedded default decoders end to end on ``reference_sets/default``: run, gate, report."""

from __future__ import annotations

import sys
from pathlib import Path

from qa.decoders.base import Decoder
from qa.decoders.factory import make_decoder
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate.demo import gate_demo_runs
from qa.report.build import write_report
from qa.store import Store

#: the embedded zoo, in the order the demo runs it, with the most seeds each gets: Real-ESRGAN is deterministic
#: and the slowest decoder on a CPU (seconds per image), so the demo decodes it once per image; l2p is the
#: generate track (caption + seed -> pixels, compared with its source pipeline ldm+vae for the same seeds); taef2
#: (a real FLUX.2-latent decoder) and taef2+esrgan (real latent -> 4x pipeline) run when their weights are in the
#: weights store (`qa weights import .../taef2_encoder.pth .../taef2_decoder.pth`), else they are skipped with that fix
DEMO_DECODERS = {"vae": 2, "pid": 2, "esrgan": 1, "bicubic": 2, "l2p": 2, "taef2": 1, "taef2+esrgan": 1}


def run_demo(db: Path | None = None, out: Path = Path("reports/demo.html"), decoders: list[str] | None = None,
             seeds: int = 2, reference_set: str = "default") -> int:
    """Run, gate and report; prints run ids, the DB path and the report path. Returns the exit status."""
    store = Store(db)
    engine = RunEngine(store)
    names = list(decoders or DEMO_DECODERS)
    run_ids: dict[str, str] = {}
    for name in names:
        decoder: Decoder | None = None
        try:
            decoder = make_decoder(name)
            reason = decoder.unavailable_reason()
        except QAError as exc:
            reason = str(exc)
        if reason or decoder is None:
            print(f"skipping decoder {name}: {reason}", file=sys.stderr)
            continue
        n_seeds = max(1, min(seeds, DEMO_DECODERS.get(name, seeds)))
        run_ids[name] = engine.start(RunConfig(decoder=name, reference_set=reference_set,
                                               seeds=list(range(n_seeds)), suite="demo"), decoder)
        print(f"run {name}: {run_ids[name]}", flush=True)
    if not run_ids:
        raise QAError("no decoder could run", "see `qa decoders` for why")
    _gate(store, run_ids)
    report_path = Path(write_report(store, out=out))
    print(f"database: {store.path}")
    print(f"report: {report_path}")
    print(next_steps(store.path, report_path, run_ids))
    return 0


def next_steps(db: Path, report: Path, run_ids: dict[str, str]) -> str:
    """What a reviewer does after the demo: a key, the trusted file, the first approval, the report's first
    screen, then a candidate gated against it."""
    decoder = "pid" if "pid" in run_ids else next(iter(run_ids))
    run, where = run_ids[decoder], f" --db {db}"
    candidate = " --set degrade_sigma=0.3" if decoder == "pid" else ""  # a setting that makes pid invent more
    return "\n".join([
        "",
        "next steps (a gate above that says 'against no approved baseline' had no approved run to compare with):",
        "  1. make your reviewer key:   qa signoff keygen --key ~/.config/qa/me_ed25519 --reviewer me",
        "  2. trust it: append the line it prints to release/allowed_signers (reviewed like code), then",
        "     export QA_TRUSTED_KEYS=release/allowed_signers",
        f"  3. approve the first release of {decoder} (once; later releases are gated against it):",
        f"     qa gate --run {run} --baseline none{where}",
        f"     qa signoff --run {run} --decision approve --key ~/.config/qa/me_ed25519{where}",
        f"  4. gate a candidate against it:  qa run --decoder {decoder}{candidate}{where} &&",
        f"     qa gate --run latest --decoder {decoder}{where}    (or: pytest suites/ --decoder={decoder})",
        f"  5. open {report}: its first screen lists the failed checks of each decoder's latest gate, then each",
        "     candidate's images against the approved run, most invented first (qa report --out FILE rewrites it)",
    ])


def _gate(store: Store, run_ids: dict[str, str]) -> None:
    for line in gate_demo_runs(store, run_ids):
        print(line)
