"""The ``qa`` command line. It only parses options and calls into ``qa``; see ``qa COMMAND --help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from qa import __version__
from qa.errors import QAError
from qa.plain_text import EscapingStream, raw_stream

EPILOG = """examples:
  qa demo                                   run the embedded decoders on reference_sets/default, gate, report
  qa run --decoder vae --decoder pid        run decoders over the default reference set, print run ids
  qa run --resume RUN_ID                    finish an interrupted run (only unfinished shards are redone)
  qa score --reference ref/ --candidate out/ --out scores.csv --maps maps/
  qa gate --run latest --decoder pid       exit 0 pass, 1 fail, 2 error (see qa gate --help)
  qa baseline export --decoder pid --out release/pid-baseline.parquet   the approved run, for CI
  qa report --weekly --out reports/weekly.html
  qa decoders | qa metrics | qa weights list

The database defaults to reports/qa.duckdb ($QA_DB overrides it; --db wins over both).

exit status (every command): 0 done; 1 a finding: a blocked release (qa gate), a sign-off chain with problems
(qa signoff verify), a weights file refused or a download that failed (qa weights); 2 qa could not do what was
asked (a wrong option, a missing file or run, a baseline file that does not verify, a decoder that could not run,
a file qa refset build skipped): the error says what to do next."""


GATE_EPILOG = """exit status:
  0  nothing blocks the release (pass, or needs-review that the policy allows)
  1  the release is blocked (a check failed, or needs review the policy does not allow)
  2  the gate could not be decided: no such run, ambiguous --run latest, bad policy, or no baseline it can
     trust (no approved run, approved on other reference content, a sign-off chain or baseline file that does
     not verify, no trusted-keys file)

baselines:
  approved   the latest approval that verifies against the trusted keys (signature, key bounds, evidence)
  FILE       a baseline file written by `qa baseline export` (verified the same way; for CI runners)
  none       no run baseline: the first release of a decoder (bounds and decoder baselines only)
  RUN_ID, decoder:NAME   a comparison; it never unlocks approval

trusted keys (for approved and FILE): --trusted-keys FILE, else $QA_TRUSTED_KEYS, else trusted_keys in
[tool.qa] / qa.toml (relative to that file). Without them an approved baseline cannot be verified: exit 2.

examples:
  qa gate --run latest --decoder pid --trusted-keys release/allowed_signers
  qa gate --decoder pid --baseline release/pid-baseline.parquet --format markdown >> "$GITHUB_STEP_SUMMARY"
  qa gate --run RUN_ID --baseline none                   the first release: judge it by absolute bounds
  qa gate --run RUN_ID --baseline decoder:bicubic        against another decoder's run on the same set
"""

TRUSTED_HELP = "allowed_signers file of trusted reviewer keys (default $QA_TRUSTED_KEYS, then trusted_keys setting)"


class _Version(argparse.Action):
    """``--version``: "qa 0.x (git commit abc123...)"; the commit is looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from qa.engine.provenance import git_commit

        commit = git_commit()
        print(f"qa {__version__} ({f'git commit {commit}' if commit else 'not a git checkout'})")
        parser.exit()


class Given(argparse.Action):
    """Stores an option's value as the default action does, and adds its dest to ``given_options``: `qa run
    --resume` tells an option typed (even with its default's value) from one left out (:mod:`qa.cli.resume_run`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given_options = frozenset({*getattr(namespace, "given_options", ()), self.dest})


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: $QA_DB or reports/qa.duckdb)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="qa", description="Hallucination-aware quality assurance for image decoders (VAE, PiD, L2P).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="print qa's version and git commit, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run the embedded default end to end: run, gate, report; prints paths",
                       description="Runs the embedded decoders over reference_sets/default, stores the results, "
                       "gates them and writes an HTML report. Prints the run ids, the DB path and the report path.")
    _add_db(p)
    p.add_argument("--out", type=Path, default=Path("reports/demo.html"), help="report path (default %(default)s)")
    p.add_argument("--decoder", action="append", help="decoders to run (default: the embedded zoo)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per stochastic decoder (default %(default)s)")

    p = sub.add_parser("run", help="run decoders over a reference set; prints the run id(s)",
                       description="Decodes every reference image with each decoder (and each seed for stochastic "
                       "ones), scores it with every metric, and stores the numbers. A run is committed shard by "
                       "shard: an interrupted run resumes with --resume RUN_ID.")
    p.add_argument("--decoder", action="append", default=[], metavar="NAME", help="decoder name (repeatable); see `qa decoders`")
    p.add_argument("--reference-set", default="default", action=Given, metavar="NAME|PATH",
                   help="reference set (default %(default)s)")
    p.add_argument("--seeds", type=int, default=2, action=Given, metavar="N",
                   help="seeds 0..N-1 for stochastic decoders (default %(default)s)")
    p.add_argument("--device", default="cpu", action=Given, choices=["cpu", "cuda"],
                   help="torch device (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=None, action=Given, help="cases per forward pass at every image size (default: the "
                   "decoder's count for 256 x 256, scaled down by pixels: 8 at 256 px is 1 at 1024 px and up)")
    p.add_argument("--shard-size", type=int, default=8, action=Given,
                   help="cases per committed shard (default %(default)s)")
    p.add_argument("--metrics", default=None, action=Given,
                   help="comma-separated metric names (default: all; see `qa metrics`)")
    p.add_argument("--engine", default="local", choices=["local", "ray"], help="where shards run (default %(default)s)")
    p.add_argument("--address", default=None, help="Ray cluster address (with --engine ray)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a decoder setting for this run, replacing qa.toml's (repeatable; VALUE as in TOML: 0.3, "
                   "true, \"x4plus\"; a bare word is a string), e.g. --set degrade_sigma=0.3; stored with the run")
    p.add_argument("--resume", metavar="RUN_ID", default=None,
                   help="finish an interrupted run (RUN_ID, or 'latest': the latest run of --decoder; a finished run is "
                   "refused). The run keeps the decoder, reference set, seeds, metrics, settings, device, batch and "
                   "shard sizes it started with: any of those options that differs is an error (exit 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(given_options=frozenset())
    _add_db(p)

    p = sub.add_parser("score", help="score existing image folders (no decoder)",
                       description="Pairs candidate files with reference files by relative path and writes one "
                       "row per (image, metric): image, metric, value, status (ok|missing|error), detail. Several "
                       "--candidate folders are several seeds of one decoder. --maps writes one grayscale PNG per "
                       "image, at the candidate's size, whose brightness is the local invented-detail amplitude "
                       "(luma RMS, linear from 0 = none; white = 0.05 or more, the same scale for every image). In CSV "
                       "an image name that starts with = + - @, tab or CR starts with ' (a spreadsheet would run it "
                       "as a formula).")
    p.add_argument("--reference", type=Path, required=True, help="folder of reference images")
    p.add_argument("--candidate", type=Path, action="append", required=True, help="folder of outputs (repeatable: seeds)")
    p.add_argument("--out", type=Path, required=True, help="results file, .parquet or .csv")
    p.add_argument("--maps", type=Path, default=None, help="folder for invented-detail maps")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: all per-image metrics)")
    p.add_argument("--encoder", default=None, help="encoder for latent consistency, e.g. area-x4")

    p = sub.add_parser("gate", help="judge a run against a baseline under a policy (exit 0 pass, 1 fail, 2 error)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Runs the checks `pytest suites/ --decoder=NAME` runs, on numbers already in the "
                       "store (it decodes nothing), prints them and stores the verdict in the gates table.",
                       epilog=GATE_EPILOG)
    p.add_argument("--run", default="latest", help="run id, or 'latest' = the latest run of --decoder (default %(default)s)")
    p.add_argument("--decoder", default=None, metavar="NAME",
                   help="scope 'latest' to this decoder (needed when the store has runs of several decoders)")
    p.add_argument("--baseline", default="approved",
                   help="'approved', a baseline FILE, 'none' (first release), a run id or 'decoder:NAME' "
                   "(default %(default)s; see below)")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="FILE", help=TRUSTED_HELP)
    p.add_argument("--policy", type=Path, default=None, help="policy file (default: the suite's for the run's track)")
    p.add_argument("--format", dest="fmt", choices=["text", "json", "markdown"], default="text",
                   help="output: text (default), json, or markdown (for CI job summaries)")
    _add_db(p)

    p = sub.add_parser("diff", help="compare two stored runs metric by metric, paired per image (stores nothing)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Every metric both runs have: A's and B's means, how much worse B is than A (+ = "
                       "worse, in the metric's units) with the 95% bootstrap interval of the paired per-image "
                       "differences, how many images got worse and the worst one. No policy, no verdict, nothing "
                       "stored (use `qa gate` to decide). Runs on other reference sets (or content) are compared "
                       "by image id; the output says so once. Exit 0, or 2 for an unknown run or metric.",
                       epilog="examples:\n  qa diff pid-20261207-101500-ab12cd latest --decoder pid\n"
                       "  qa diff RUN_A RUN_B --metrics psnr,invented_detail --format markdown")
    p.add_argument("run_a", metavar="RUN_A", help="what B is compared with: a run id, or 'latest' (of --decoder)")
    p.add_argument("run_b", metavar="RUN_B", help="the candidate: a run id, or 'latest' (of --decoder)")
    p.add_argument("--decoder", default=None, metavar="NAME", help="scope 'latest' to this decoder")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: every metric both have; an unknown name: exit 2)")
    p.add_argument("--format", dest="fmt", choices=["text", "json", "markdown"], default="text",
                   help="output: text (default), json, or markdown")
    _add_db(p)

    p = sub.add_parser("export", help="write one run's per-image results to a Parquet or CSV file",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="One row per (image, seed, metric) of the run: value (empty where it is missing "
                       "or failed), status, detail, metric version, and what identifies the run, the same on every row: "
                       "decoder, family, backend, track, scale, run_status (finished, interrupted, running...), "
                       "started_at and finished_at (ISO 8601, UTC), reference_set and reference_set_sha256, seeds and "
                       "decoder_settings (canonical JSON text, empty when the run did not record them), "
                       "weights_sha256, encoder_sha256, identity_sha256, qa_version, git_commit, device and suite. "
                       "seed is -1 on the rows "
                       "of per-case metrics (seed_variance, seed_alignment: one value over every seed) and on the "
                       "'case' rows (metric 'case', one per image: ok, or why it produced no output); value is "
                       "inf for the PSNR of identical images (written 'inf' in CSV). In CSV a text cell that starts with = + - @, "
                       "tab or CR (which a spreadsheet would run as a formula) starts with ' (Parquet keeps the text "
                       "as it is). From Python, "
                       "qa.store.frames returns the same as pandas DataFrames (see README, 'Reading results').",
                       epilog="examples:\n  qa export --run latest --decoder pid --out pid.parquet\n"
                       "  qa export --run RUN_ID --out run.csv")
    p.add_argument("--run", default="latest", help="run id, or 'latest' (of --decoder) (default %(default)s)")
    p.add_argument("--decoder", default=None, metavar="NAME", help="scope 'latest' to this decoder")
    p.add_argument("--out", type=Path, required=True, help="the file to write: .parquet or .csv")
    _add_db(p)

    p = sub.add_parser(
        "baseline", help="export the verified approved run to one file for CI, or verify such a file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="export: writes the approved run of --decoder (verified against the trusted keys) with its\n"
        "evidence (results, set results, image hashes, run identity, reference manifest, its gate) and the\n"
        "signed sign-off chain into one Parquet file. Commit it beside the trusted-keys file; a CI runner with\n"
        "an empty store gates against it (`qa gate --baseline FILE`, `pytest --baseline=FILE`). verify: checks a\n"
        "file (bytes, signatures, evidence) and prints what it holds; exit 0 verified, 2 otherwise.",
        epilog="examples:\n"
        "  qa baseline export --decoder pid --out release/pid-baseline.parquet --trusted-keys release/allowed_signers\n"
        "  qa baseline verify release/pid-baseline.parquet --trusted-keys release/allowed_signers")
    p.add_argument("action", choices=["export", "verify"])
    p.add_argument("file", nargs="?", type=Path, default=None, help="the baseline file (for verify)")
    p.add_argument("--decoder", default=None, metavar="NAME", help="whose approved run to export")
    p.add_argument("--reference-set", default=None, metavar="NAME",
                   help="the reference set of the approval (default: that of the decoder's latest approval)")
    p.add_argument("--out", type=Path, default=None, help="the file to write (must end in .parquet)")
    p.add_argument("--thumbnails", action="store_true", help="also store the images themselves (else their sha256)")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="FILE", help=TRUSTED_HELP)
    _add_db(p)

    p = sub.add_parser("report", help="write a self-contained HTML report from the store",
                       description="Writes one self-contained HTML file: summary, candidate vs approved run per "
                       "image, trends, gates and sign-offs of the selected runs. Past a size budget (about 4 MB of "
                       "images) the 1:1 crops are files in <name>_crops/ beside it, which must travel with it (the "
                       "command then prints that folder too, and the page says so). Approved runs are verified against "
                       "the trusted keys (--trusted-keys, $QA_TRUSTED_KEYS or the trusted_keys setting); without "
                       "them the report names none and says why. Exit 2 (nothing written) when --out does not end "
                       "in .html or a --decoder has no run in the store (the error names the decoders that do).")
    p.add_argument("--weekly", action="store_true", help="the last 7 days")
    p.add_argument("--since", default=None, help="ISO date: only runs started since then")
    p.add_argument("--decoder", action="append", default=None, metavar="NAME",
                   help="only this decoder (repeatable); each must have a run in the store")
    p.add_argument("--out", type=Path, default=Path("reports/report.html"),
                   help="output file, .html (default %(default)s)")
    p.add_argument("--png", type=Path, default=None, help="also export charts as PNG into this folder (needs kaleido + chromium)")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="FILE", help=TRUSTED_HELP)
    _add_db(p)

    p = sub.add_parser(
        "signoff", help="record, verify or make keys for release sign-offs (signed, append-only, hash-chained)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Records a reviewer's decision on a run, signed with the reviewer's Ed25519 key and checked\n"
        "against a trusted-keys file kept outside the database (git's allowed_signers format:\n"
        "'NAME ssh-ed25519 KEY' per line). An approval needs a finished run whose latest gate under the\n"
        "track's shipped policy (or --policy) passed; otherwise --override with --note. The whole chain is\n"
        "verified before a row is appended; `verify` finds edited, deleted, re-used or untrusted rows.",
        epilog="examples:\n"
        "  qa signoff keygen --key ~/.config/qa/ana_ed25519 --reviewer ana   prints the line for the trusted file\n"
        "  qa signoff --run RUN_ID --decision approve --key KEY --trusted-keys suites/allowed_signers\n"
        "  qa signoff verify --trusted-keys suites/allowed_signers          exit 0 intact, 1 problems, 2 error\n"
        "  qa signoff list [--run RUN_ID]  |  qa signoff show --seq 3      what is stored, oldest first\n"
        "$QA_SIGNING_KEY and $QA_TRUSTED_KEYS stand in for --key and --trusted-keys.")
    p.add_argument("action", nargs="?", choices=["verify", "keygen", "list", "show"],
                   help="none: record a sign-off (needs --run, --decision and a key); 'verify' checks the chain, "
                   "signatures and anchor; 'keygen' writes a new key pair; 'list' shows the sign-offs (of --run); "
                   "'show --seq N' one sign-off with every stored field")
    p.add_argument("--run", default=None,
                   help="run id, or 'latest' (of --decoder) (required to record; filters 'list')")
    p.add_argument("--decoder", default=None, metavar="NAME", help="scope --run latest to this decoder")
    p.add_argument("--expect-head", default=None, metavar="HASH",
                   help="with verify: fail (exit 1) unless the chain's head hash is HASH (e.g. kept in git)")
    p.add_argument("--seq", type=int, default=None, help="sign-off sequence number (for 'show')")
    p.add_argument("--reviewer", default=None, help="your name in the trusted-keys file (default: your key's only name)")
    p.add_argument("--decision", choices=["approve", "reject"], default=None, help="required to record")
    p.add_argument("--note", default="", help="why; required with --override")
    p.add_argument("--override", action="store_true", help="approve a run without a passing gate (needs --note)")
    p.add_argument("--key", type=Path, default=None, help="your Ed25519 private key (OpenSSH file; default $QA_SIGNING_KEY)")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="FILE",
                   help="allowed_signers file of trusted reviewer keys (default $QA_TRUSTED_KEYS)")
    p.add_argument("--policy", type=Path, default=None,
                   help="judge the approval by this policy's gates instead of the track's shipped policy (signed)")
    _add_db(p)

    p = sub.add_parser("status", help="runs, gates and sign-offs of a decoder",
                       description="Runs of a decoder with their latest gate, sign-offs and the approved run; for "
                       "the newest run: its failed checks, its settings against the approved run, and a report link. "
                       "Without DECODER: every decoder with runs. Exit 0; 2 when DECODER has no run in the store "
                       "(the error names the decoders that do) or the sign-off chain does not verify.")
    p.add_argument("decoder", nargs="?", default=None, metavar="DECODER",
                   help="a decoder with runs in the store (default: every decoder with runs)")
    p.add_argument("--format", dest="fmt", choices=["text", "json", "markdown"], default="text",
                   help="output: text (default), json, or markdown (for CI job summaries)")
    p.add_argument("--report", type=Path, default=Path("reports/report.html"),
                   help="the report file to link to (default %(default)s)")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="FILE", help=TRUSTED_HELP)
    _add_db(p)

    sub.add_parser("decoders", help="list decoders: track, inputs, stochastic, scale, backend, availability",
                   description="Every registered and configured decoder: its track, inputs, whether it is "
                   "stochastic, its output scale, family/backend and whether it can run here (if not, why and how to "
                   "fix it); then the settings each is built with and where each comes from (qa.toml, pyproject, "
                   "the family's default). `qa run --set KEY=VALUE` replaces one for a run.")
    sub.add_parser("metrics", help="list metrics: direction, range, level, needs, weights, availability",
                   description="Every registered metric: which way is better (higher, lower, closer to a value, "
                   "none), its range, level (image, case or set), what it needs (reference, latent, baseline...), "
                   "its weights and whether they are present here.")

    p = sub.add_parser("weights", help="manage model weights (only `fetch` uses the network)",
                       description="list: known weights and whether they are present; import PATH: check a file's "
                       "sha256 against the official one and store it; verify: re-check every stored file; fetch "
                       "NAME: download (the only command that uses the network). Exit 0 done; 1 verify found a "
                       "file whose hash differs, import refused a file (hash or contents) or fetch failed; 2 "
                       "wrong usage (unknown NAME, no such PATH).")
    p.add_argument("action", choices=["list", "import", "verify", "fetch"])
    p.add_argument("target", nargs="?", help="PATH for import, NAME for fetch")

    p = sub.add_parser("refset", help="build a reference set (manifest.csv) from a folder of images",
                       description="Writes manifest.csv (id, file, caption, licence, source, sha256) for every "
                       "readable image of FOLDER; unreadable files are listed with the reason and left out.")
    p.add_argument("action", choices=["build"])
    p.add_argument("folder", type=Path)
    p.add_argument("--captions", type=Path, default=None, help="CSV/TSV/JSON mapping file -> caption")
    p.add_argument("--out", type=Path, default=None, help="copy images into this folder instead of writing in place")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qa`` console script; returns the exit status (2 for errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from qa.cli import commands

    handler: Callable[[argparse.Namespace], int] = getattr(commands, f"cmd_{args.command}")
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(sys.stdout), EscapingStream(sys.stderr)  # names are shown, not obeyed
    try:
        return _run(handler, args)
    finally:
        sys.stdout, sys.stderr = streams


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``handler(args)`` with qa's errors turned into messages and exit statuses."""
    try:
        return handler(args)
    except QAError as exc:
        print(f"qa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # a broken or missing third-party package: say which, never a half-done command
        name = exc.name or ""
        if name == "qa" or name.startswith("qa."):
            raise  # qa's own modules always import: this is a bug, show the traceback
        print(f"qa {args.command}: error: the package {name or '?'} cannot be imported ({type(exc).__name__}: {exc})\n"
              f"  hint: reinstall it (`pip install --force-reinstall {name.split('.')[0] or 'PACKAGE'}`) or reinstall "
              "qa with its extras (`pip install -e '.[ray,clip,export]'`)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        raw_stream(sys.stderr).close()
        return 0
    except KeyboardInterrupt:
        print(f"qa {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
