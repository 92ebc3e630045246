"""pytest plugin for release suites: options, fixtures and hooks only; the logic is in :mod:`qa.session.suite`.

Options (group ``qa``): ``--decoder``, ``--reference-set``, ``--baseline``, ``--trusted-keys``, ``--db``,
``--seeds``, ``--policy``, ``--fresh-run``, ``--gate-summary``.
Fixtures: ``qa_run`` (the candidate run, run now or reused), ``qa_baseline`` (from ``--baseline``),
``qa_decoder_baseline`` (the policy's decoder baseline), ``qa_policy``, ``gate`` and ``qa_metric`` (parametrized
over the policy's metrics that the test's check applies to). A suite module names its policy file in
``QA_POLICY`` (relative to the module); a test marked ``@pytest.mark.qa_check("bounds" | "baseline" |
"decoder_baseline" | "worst_images")`` runs for the metrics :func:`qa.gate.evaluate.metrics_for` names (the ones
``qa gate`` checks), other tests for every metric of the policy. With ``--decoder``, the suites of other tracks
and the tests of a check the policy asks of no metric are deselected (one summary line says why), not skipped.
Collecting a release suite without ``--decoder``, with an empty one (an unset CI variable) or an unknown one is a
usage error (exit 4). One more test item, ``qa::release_gate``, runs after the suites: it stores the session's
gate and fails when that gate decides nothing (partial: ``-k``, ``-m``, ``--deselect``; or no gate at all), so the
reason is a failed testcase in the JUnit XML too; its properties name the gate and the run it judged.
Every metric's set value and interval goes into the JUnit XML; gate verdicts go into the ``gates`` table;
``--gate-summary FILE`` writes the session's gate as Markdown (for a CI step summary).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:  # the gate package imports torch; load it only when a suite needs it
    from qa.gate.checks import Baseline, CheckResult
    from qa.gate.policy import Policy
    from qa.session.suite import Gate, RunHandle, SuiteSession

SESSION_KEY = pytest.StashKey["SuiteSession"]()
RECORDED_KEY = pytest.StashKey[set[str]]()
DESELECTED_KEY = pytest.StashKey[list[str]]()
GATED_KEY = pytest.StashKey[bool]()  # a release suite was collected: the session gates
USAGE_KEY = pytest.StashKey[str]()  # why --decoder cannot be used (also written to --gate-summary)
#: the plugin's fixtures: a test using one (directly or through ``gate``) belongs to a release suite
QA_FIXTURES = frozenset({"qa_policy", "qa_run", "qa_baseline", "qa_decoder_baseline", "qa_metric"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qa", "qa release gates (see suites/)")
    group.addoption("--decoder", default=None, help="decoder to gate (see `qa decoders`); the release suites need "
                    "it: without it, or empty, or unknown, pytest stops with a usage error")
    group.addoption("--reference-set", default="default", help="reference set name or folder (default: default)")
    group.addoption("--baseline", default="approved",
                    help="'approved' (the verified approved run of this decoder), a baseline FILE from `qa baseline "
                    "export`, 'none' (first release), a run id, or 'decoder:NAME'; without an approved run, or when "
                    "it does not verify, the baseline tests fail with the reason")
    group.addoption("--trusted-keys", default=None, type=Path,
                    help="allowed_signers file that verifies approvals (default $QA_TRUSTED_KEYS, then the "
                    "trusted_keys setting)")
    group.addoption("--db", default=None, type=Path, help="DuckDB file (default: $QA_DB or reports/qa.duckdb)")
    group.addoption("--seeds", default=2, type=int, help="seeds 0..N-1 for stochastic decoders (default 2)")
    group.addoption("--policy", default=None, type=Path, help="policy TOML (default: each suite's own)")
    group.addoption("--fresh-run", action="store_true", default=False,
                    help="decode the candidate now, even when a finished run with the same identity is stored")
    group.addoption("--gate-summary", default=None, type=Path, metavar="FILE",
                    help="write the gate this session decided (or why it decided none) as Markdown to FILE, e.g. "
                    "for $GITHUB_STEP_SUMMARY")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDED_KEY] = set()
    config.addinivalue_line("markers", "qa_check(kind): parametrize qa_metric over the policy's metrics that the "
                            "check kind applies to: bounds, baseline, decoder_baseline or worst_images")
    config.addinivalue_line("markers", "qa_no_metric: a qa check no metric of the policy asks for (deselected)")
    out = config.getoption("--gate-summary")
    if out is not None:  # a job killed before the end leaves this, never an earlier session's summary
        from qa.session.ci import UNDECIDED

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"{UNDECIDED}\n\npytest stopped before it decided a gate: see the job's log\n")


def _session(config: pytest.Config) -> SuiteSession:
    """The session's :class:`SuiteSession`, created on first use (so plain test runs never import torch)."""
    if SESSION_KEY not in config.stash:
        from qa.session.suite import SuiteOptions, SuiteSession

        opts = SuiteOptions(decoder=config.getoption("--decoder"), reference_set=config.getoption("--reference-set"),
                            baseline=config.getoption("--baseline"), db=config.getoption("--db"),
                            seeds=config.getoption("--seeds"), policy=config.getoption("--policy"),
                            trusted_keys=config.getoption("--trusted-keys"),
                            fresh_run=config.getoption("--fresh-run"))
        config.stash[SESSION_KEY] = SuiteSession(opts)
    return config.stash[SESSION_KEY]


def _module_policy_path(module: Any) -> Path | None:
    name = getattr(module, "QA_POLICY", None)
    return Path(module.__file__).with_name(str(name)) if name else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "qa_metric" not in metafunc.fixturenames:
        return
    config = metafunc.config
    module_policy = _module_policy_path(metafunc.module)
    names: list[str] = []
    ids: list[str] = []
    if config.getoption("--policy") or module_policy or config.getoption("--decoder"):
        policy = _session(config).policy_for(module_policy)
        marker = metafunc.definition.get_closest_marker("qa_check")
        if marker is not None:
            from qa.gate.evaluate import metrics_for

            names = metrics_for(policy, str(marker.args[0]))
        else:
            names = policy.metric_names()
        ids = [f"{policy.rule(n).group}:{n}" for n in names]
    if not names:  # deselected in pytest_collection_modifyitems, not skipped
        metafunc.parametrize("qa_metric", [pytest.param(None, marks=pytest.mark.qa_no_metric)], ids=["none"])
        return
    metafunc.parametrize("qa_metric", names, ids=ids)


def _in_release_suite(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return bool(QA_FIXTURES & set(getattr(item, "fixturenames", ()))) or getattr(module, "QA_POLICY", None) is not None


@pytest.hookimpl(tryfirst=True)  # before -k/-m/--deselect: whether a release suite was collected at all
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A usage error when release suites were collected without a usable ``--decoder`` (none, empty, unknown);
    with one, deselect the suites of other tracks and the tests whose check no metric has."""
    decoder: str | None = config.getoption("--decoder")
    given = decoder is not None and bool(decoder.strip())
    gated = any(_in_release_suite(item) for item in items)
    if not gated and (decoder is None or given):
        return
    from qa.session.ci import decoder_problem

    problem = decoder_problem(decoder, _session(config) if given else None)
    if problem:
        config.stash[USAGE_KEY] = problem
        raise pytest.UsageError(problem)
    config.stash[GATED_KEY] = True
    keep: list[pytest.Item] = []
    gone: list[pytest.Item] = []
    why: dict[str, str] = {}
    track = ""
    try:
        track = _session(config).decoder_track()
    except Exception:  # noqa: BLE001 - a decoder that cannot be built: every test runs and fails with the reason
        track = ""
    for item in items:
        module = getattr(item, "module", None)
        path = _module_policy_path(module) if module is not None else None
        if item.get_closest_marker("qa_no_metric") is not None:
            gone.append(item)
            why.setdefault(f"{item.nodeid.split('[')[0]}", "the policy asks this check of no metric")
            continue
        if track and path is not None:
            policy = _session(config).policy_for(path)
            if policy.track != track:
                gone.append(item)
                why.setdefault(str(item.path.name), f"decoder {config.getoption('--decoder')!r} serves the {track} "
                               f"track; this suite gates {policy.track}")
                continue
        keep.append(item)
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = keep
        config.stash[DESELECTED_KEY] = [f"deselected {where}: {reason}" for where, reason in why.items()]


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")  # after -k/-m/--deselect: never dropped
def pytest_collection_modifyitems_release_gate(session: pytest.Session, config: pytest.Config,
                                               items: list[pytest.Item]) -> None:
    """Appends the ``qa::release_gate`` item (:class:`ReleaseGateItem`) to a session that gates."""
    if config.stash.get(GATED_KEY, False):
        items.append(ReleaseGateItem.from_parent(session, name="release_gate", nodeid="qa::release_gate"))


class GateNotDecided(Exception):
    """The session's gate decides nothing (partial, or none stored) or blocks the release; the message says why."""


class ReleaseGateItem(pytest.Item):
    """The session's gate as one test: stores it, names it in its JUnit properties (gate id, the run it judged,
    verdict, whether whole) and fails when it decides nothing. The checks' own verdicts are the suites' tests."""

    def runtest(self) -> None:
        from qa.session.ci import gate_properties

        sess = _session(self.config)
        sess.finish()
        self.user_properties += gate_properties(sess.gates or [])
        from qa.session.ci import blocking_problem

        problem = sess.gate_problem() or blocking_problem(sess.gates or [])
        if problem:  # decides nothing, or blocks: whatever the suites' own tests said (xfail, a caught assert)
            raise GateNotDecided(problem)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, GateNotDecided):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "qa release gate: every check of the policy ran"


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    lines: list[str] = config.stash.get(DESELECTED_KEY, [])
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    usage = config.stash.get(USAGE_KEY, "")
    out: Path | None = config.getoption("--gate-summary")
    if SESSION_KEY not in config.stash:
        if out is not None and (usage or config.stash.get(GATED_KEY, False)):
            from qa.session.ci import summary_markdown

            out.write_text(summary_markdown([], usage, config.getoption("--decoder")))
        return
    sess = config.stash[SESSION_KEY]
    lines, partial = sess.finish()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in lines:
            reporter.write_line(line)
    from qa.session.ci import blocking_problem

    blocked = bool(blocking_problem(sess.gates or []))
    if (partial or blocked) and session.exitstatus == pytest.ExitCode.OK:  # no pass (fail closed)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if out is not None:
        from qa.session.ci import summary_markdown

        out.write_text(summary_markdown(sess.gates or [], usage or sess.gate_problem(), sess.options.decoder))


@pytest.fixture(scope="module")
def qa_policy(request: pytest.FixtureRequest) -> Policy:
    """The policy of this module (``--policy`` overrides ``QA_POLICY``)."""
    sess = _session(request.config)
    if not request.config.getoption("--decoder"):  # a usage error at collection; fail closed if it gets here
        pytest.fail("no --decoder given: pass --decoder NAME (see `qa decoders`) to run the release suites")
    return sess.policy_for(_module_policy_path(request.module))


@pytest.fixture(scope="module")
def qa_run(request: pytest.FixtureRequest, qa_policy: Policy, record_testsuite_property: Any) -> RunHandle:
    """The candidate run (run now, or a stored identical one reused); skips modules of another track."""
    sess = _session(request.config)
    try:
        track = sess.decoder_track()
    except Exception as exc:  # noqa: BLE001 - an unknown/broken decoder fails the tests with the reason
        from qa.session.suite import RunHandle

        return RunHandle(decoder=sess.options.decoder or "", error=f"{type(exc).__name__}: {exc}")
    if track != qa_policy.track:
        pytest.skip(f"decoder {sess.options.decoder!r} serves the {track} track; this suite gates {qa_policy.track}")
    fresh = not sess.has_candidate(qa_policy)
    if fresh:
        _say(request.config, f"qa: {sess.options.decoder}: reusing a stored run with the same identity, or decoding "
             f"reference set {sess.options.reference_set!r} now ({len(sess.run_metrics(qa_policy))} metrics)...")
    started = time.monotonic()
    run = sess.candidate(qa_policy)
    if fresh:
        from qa.session.ci import run_line

        _say(request.config, f"qa: {sess.options.decoder}: {run_line(run, time.monotonic() - started)}")
    recorded = request.config.stash[RECORDED_KEY]
    if (run.run_id or run.error) not in recorded:
        recorded.add(run.run_id or run.error)
        from qa.session.suite import metric_properties

        for name, value in metric_properties(run):
            record_testsuite_property(name, value)
    return run


@pytest.fixture(scope="module")
def qa_baseline(request: pytest.FixtureRequest, qa_run: RunHandle, qa_policy: Policy,
                record_testsuite_property: Any) -> Baseline:
    """The ``--baseline`` (default ``approved``, verified); when it cannot be used its ``error`` says why and every
    comparison with it fails."""
    sess = _session(request.config)
    b = sess.baseline(sess.options.baseline, qa_run)
    sess.note_baseline(qa_run, qa_policy, b)
    if b.run is not None and qa_run.info is not None and qa_run.store is not None:
        from qa.gate.evaluate import settings_against

        text, _ = settings_against(qa_run.store, qa_run.info, [b])
        if text:
            record_testsuite_property(f"qa.settings_vs_{b.kind}", text)
    return b


@pytest.fixture(scope="module")
def qa_decoder_baseline(request: pytest.FixtureRequest, qa_run: RunHandle, qa_policy: Policy) -> Baseline:
    """The policy's ``baseline_decoder`` as a baseline (skips when the policy names none or it is the candidate)."""
    name = qa_policy.baseline_decoder
    if not name:
        pytest.skip(f"policy {qa_policy.source} names no baseline_decoder")
    sess = _session(request.config)
    b = sess.decoder_baseline(qa_run, qa_policy)  # the same resolution as `qa gate`; an unfair one skips checks
    if b is None:
        pytest.skip(f"the candidate is the policy's baseline decoder {name!r}")
    sess.note_baseline(qa_run, qa_policy, b)
    return b


@pytest.fixture
def gate(request: pytest.FixtureRequest, qa_run: RunHandle, qa_policy: Policy) -> Gate:
    """Checks on the candidate run; each check's verdict and numbers go into the test's JUnit properties."""

    def record(res: CheckResult) -> None:
        request.node.user_properties.append((f"qa.{res.metric}.{res.kind}", res.verdict))
        request.node.user_properties.append(("qa.check", res.message))
        if res.images:  # every image over its allowance, one property each (the message names the first few)
            from qa.gate.worse import image_text

            request.node.user_properties += [("qa.image", image_text(im)) for im in res.images]

    return _session(request.config).gate(qa_run, qa_policy, _skip, record)


def _say(config: pytest.Config, text: str) -> None:
    """One progress line on the terminal (pytest prints nothing else while a decoder runs for minutes), past
    pytest's output capture (inside a fixture it would only show in a failing test's captured output)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    capman = config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(text)


def _skip(reason: str) -> NoReturn:
    """pytest.skip reported at the test's own location (not inside qa.gate)."""
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # an older pytest without the keyword
        exc = pytest.skip.Exception(reason)
    raise exc


@pytest.fixture
def qa_metric(request: pytest.FixtureRequest) -> str:
    """A metric name of the module's policy (tests using it are parametrized over the policy's metrics)."""
    return str(request.param)
