"""The OpenAPI schema drives a fuzzer against the real service: every check on.

Schemathesis generates valid and invalid requests from ``/openapi.json`` and checks
that no answer is a 500, that every status, header and body is the one the schema
documents, that valid data is accepted and invalid data rejected.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from resilia_observabilite.faults import Services
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

load_all_checks()
ALL_CHECKS = CHECKS.get_all()


@pytest.fixture(scope="module")
def service(tmp_path_factory, dev_model_path):
    env = {"RESILIA_ARTIFACTS_DIR": str(dev_model_path.parent)}
    with Services(tmp_path_factory.mktemp("schemathesis"), env) as services:
        yield services


def test_every_check_is_on():
    names = {getattr(c, "__name__", type(c).__name__) for c in ALL_CHECKS}
    assert {
        "not_a_server_error",
        "positive_data_acceptance",
        "negative_data_rejection",
    } <= (names)
    assert len(ALL_CHECKS) >= 14


MUST_FUZZ = {
    "api": {"POST /predict", "GET /customers/{customer_id}/churn"},
    "feature store": {"GET /customers/{customer_id}"},
}


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("target", list(MUST_FUZZ))
def test_the_service_does_what_its_schema_says(service, target, mode):
    url = service.url if target == "api" else str(service.settings.feature_store.url)
    schema = schemathesis.openapi.from_url(f"{url.rstrip('/')}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = set()
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(checks=ALL_CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameter, no body)
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        fuzzed.add(operation.label)
    assert MUST_FUZZ[target] <= fuzzed
