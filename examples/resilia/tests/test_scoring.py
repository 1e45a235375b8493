import numpy as np

from resilia.data import generate_customers
from resilia.model import predict_churn_proba
from resilia.scoring import FastScorer


def test_fast_scorer_matches_the_pipeline(trained):
    pipeline, _ = trained
    scorer = FastScorer.from_pipeline(pipeline)
    customers = generate_customers(2_000, seed=11)
    expected = predict_churn_proba(pipeline, customers)
    records = customers.to_dict(orient="records")
    for record in records:
        record["birth_date"] = record["birth_date"].date()
        record["signup_date"] = record["signup_date"].date()
    got = np.array([scorer.score(r) for r in records])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_unknown_department_counts_as_no_department(trained):
    scorer = FastScorer.from_pipeline(trained[0])
    customer = generate_customers(1, seed=1).iloc[0].to_dict()
    customer["birth_date"] = customer["birth_date"].date()
    customer["signup_date"] = customer["signup_date"].date()
    known = scorer.score(customer)
    unknown = scorer.score({**customer, "postcode": "97400"})
    assert 0 < unknown < 1 and unknown != known
