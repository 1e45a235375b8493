"""The fil-rouge pipeline as an Airflow DAG: each month, extract the customers,
validate them, train a candidate, compare it with the model in service, publish it
only if it is better, then score the customers with the model in service.

The tasks call the steps of ``resilia.pipeline`` and pass paths to each other, never
tables. Nothing heavy runs when the scheduler parses this file: resilia (pandas,
scikit-learn) is imported inside the tasks.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, Variable, dag, task
from resilia_common import MONTHLY

SERVING_MODEL = Asset("resilia-serving-model")
"""Updated by ``publish``: a DAG scheduled on it would redeploy the API."""


def _root() -> str:
    root = Variable.get("resilia_data_dir", default=None)
    if not root:
        raise RuntimeError(
            "Airflow variable resilia_data_dir is not set "
            "(set it in the UI or with AIRFLOW_VAR_RESILIA_DATA_DIR)"
        )
    return root


def _month(data_interval_start) -> str:
    """The month the run is about: its data interval, never today's date."""
    return data_interval_start.strftime("%Y-%m")


@dag(
    dag_id="resilia_monthly",
    **MONTHLY,  # calendar, catch-up, retries: resilia_common.py
    params={"env": Param("staging", enum=["dev", "staging", "prod"])},
    tags=["resilia", "fil-rouge"],
    doc_md=__doc__,
)
def resilia_monthly():
    @task
    def extract(data_interval_start=None) -> dict[str, str]:
        from resilia.pipeline import extract

        return extract(_root(), _month(data_interval_start))

    @task
    def validate(paths: dict[str, str]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from resilia.pipeline import DataValidationError, validate

        try:
            return validate(paths["customers"])
        except DataValidationError as exc:
            # Bad data stay bad: fail now, without the retries meant for outages.
            raise AirflowFailException(f"DataValidationError: {exc}") from exc

    @task(pool="training", retries=0)
    def train(
        paths: dict[str, str], summary: dict, params=None, data_interval_start=None
    ) -> str:
        from resilia.pipeline import train_candidate

        return train_candidate(
            _root(), _month(data_interval_start), paths["train"], params["env"]
        )

    @task
    def evaluate(
        candidate: str, paths: dict[str, str], data_interval_start=None
    ) -> dict:
        from resilia.pipeline import evaluate

        return evaluate(
            _root(), _month(data_interval_start), candidate, paths["holdout"]
        )

    @task(outlets=[SERVING_MODEL])
    def publish(evaluation: dict) -> dict:
        from resilia.pipeline import publish

        # exercise: airflow-gain
        return publish(_root(), evaluation, min_gain=0.01)
        # end of exercise

    @task
    def score(decision: dict, paths: dict[str, str], data_interval_start=None) -> str:
        from resilia.pipeline import score

        return score(_root(), _month(data_interval_start), paths["customers"])

    paths = extract()
    summary = validate(paths)
    candidate = train(paths, summary)
    decision = publish(evaluate(candidate, paths))
    score(decision, paths)


resilia_monthly()
