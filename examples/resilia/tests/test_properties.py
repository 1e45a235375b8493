"""Property-based tests: a rule that must hold for every input, checked by Hypothesis.

Instead of three hand-picked examples, Hypothesis generates hundreds of inputs
(seeded, so a run is reproducible) and, when one breaks the property, shrinks it to
the smallest failing case it can find.
"""

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilia.model import CHURN_THRESHOLD, WATCH_THRESHOLD, risk_band
from resilia.schema import PLANS, Customer
from resilia.scoring import FastScorer
from resilia.serving.logs import mask_text, mask_value

BANDS = ("low", "medium", "high")
FAST = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

customers = st.fixed_dictionaries(
    {
        "birth_date": st.dates(date(1916, 1, 1), date(2009, 12, 31)).map(str),
        "postcode": st.from_regex(r"\A[0-9]{5}\Z"),
        "signup_date": st.dates(date(2000, 1, 1), date(2025, 12, 31)).map(str),
        "plan": st.sampled_from(sorted(PLANS)),
        "monthly_fee": st.floats(0, 100, allow_nan=False),
        "rides_last_month": st.integers(0, 1000),
        "support_calls_90d": st.integers(0, 100),
        "late_payments_12m": st.integers(0, 12),
    }
)


@pytest.fixture(scope="module")
def scorer(trained):
    return FastScorer.from_pipeline(trained[0])


@FAST
@given(p=st.floats(0, 1), q=st.floats(0, 1))
def test_risk_band_is_monotonic(p, q):
    low, high = sorted((p, q))
    assert BANDS.index(risk_band(low)) <= BANDS.index(risk_band(high))


@FAST
@given(p=st.floats(0, 1))
def test_risk_band_follows_the_two_thresholds(p):
    expected = (
        "high" if p >= CHURN_THRESHOLD else "medium" if p >= WATCH_THRESHOLD else "low"
    )
    assert risk_band(p) == expected


@FAST
@given(customer=customers)
def test_every_valid_customer_gets_a_probability(scorer, customer):
    Customer.model_validate(customer)  # the strategy makes valid requests only
    # Not 0 < p < 1: Hypothesis found valid customers (many support calls, many
    # late payments) whose probability rounds to exactly 1.0 in floating point.
    assert 0.0 <= scorer.score(customer) <= 1.0


@FAST
@given(customer=customers, extra=st.integers(1, 12))
def test_more_late_payments_raise_the_risk(scorer, customer, extra):
    late = min(customer["late_payments_12m"] + extra, 12)
    if late == customer["late_payments_12m"]:
        return
    before = scorer.score(customer)
    after = scorer.score({**customer, "late_payments_12m": late})
    assert after >= before
    if before < 0.99:  # below saturation, strictly more
        assert after > before


local_parts = st.from_regex(r"\A[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ0-9._%+-]{3,20}\Z")
domains = st.from_regex(r"\A[a-z]{2,10}\.(fr|org|com|Example\.ORG)\Z")


@FAST
@given(
    local=local_parts,
    domain=domains,
    before=st.sampled_from(["", "contact :", "écrire à", "<", "(mail"]),
)
def test_no_email_local_part_survives_masking(local, domain, before):
    masked = mask_text(f"{before} {local}@{domain} ")
    assert masked == f"{before} {local[0]}***@{domain} "
    assert mask_text(masked) == masked  # masking twice changes nothing


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["email", "plan", "x", "Phone"]), children)
    ),
    max_leaves=15,
)


@FAST
@given(value=json_values)
def test_sensitive_keys_are_masked_at_any_depth(value):
    def leaks(v):
        if isinstance(v, dict):
            return any(
                (k.lower() in {"email", "phone"} and w != "***") or leaks(w)
                for k, w in v.items()
            )
        if isinstance(v, list):
            return any(leaks(w) for w in v)
        return False

    assert not leaks(mask_value("payload", value))
