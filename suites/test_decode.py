"""Release gate of the decode track: `pytest suites/ --decoder=NAME` (thresholds in policy_decode.toml).

Tests skip with the reason when no --decoder is given or the decoder serves another track. Each metric of the
policy is checked against its absolute bounds, against --baseline (default: the last approved run) and, where
the policy names one, against the baseline decoder's run on the same reference set.
"""

QA_POLICY = "policy_decode.toml"


def test_every_case_decoded(gate):
    gate.cases_ok()


def test_absolute_bounds(gate, qa_metric):
    gate.metric(qa_metric).within_bounds()


def test_not_worse_than_baseline(gate, qa_metric, qa_baseline):
    gate.metric(qa_metric).not_worse_than(qa_baseline)


def test_not_worse_than_decoder_baseline(gate, qa_metric, qa_decoder_baseline):
    gate.metric(qa_metric).not_worse_than(qa_decoder_baseline)
