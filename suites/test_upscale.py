"""Release gate of the upscale track: `pytest suites/ --decoder=NAME` (thresholds in policy_upscale.toml).

Without a usable --decoder (none, empty, unknown) pytest stops with a usage error; with one, the suites of
other tracks are deselected. Each
metric of the policy is checked against its absolute bounds, against --baseline (default: the last approved run),
where the policy names one against the baseline decoder's run on the same reference set, and on its worst images
against --baseline; each test runs for the metrics whose rule asks for its check (`qa_check`), like `qa gate`.
"""

import pytest

QA_POLICY = "policy_upscale.toml"


def test_every_case_decoded(gate):
    gate.cases_ok()


@pytest.mark.qa_check("bounds")
def test_absolute_bounds(gate, qa_metric):
    gate.metric(qa_metric).within_bounds()


@pytest.mark.qa_check("baseline")
def test_not_worse_than_baseline(gate, qa_metric, qa_baseline):
    gate.metric(qa_metric).not_worse_than(qa_baseline)


@pytest.mark.qa_check("decoder_baseline")
def test_not_worse_than_decoder_baseline(gate, qa_metric, qa_decoder_baseline):
    gate.metric(qa_metric).not_worse_than(qa_decoder_baseline)


@pytest.mark.qa_check("worst_images")
def test_worst_images_not_worse_than_baseline(gate, qa_metric, qa_baseline):
    gate.metric(qa_metric).worst_images_not_worse_than(qa_baseline)
