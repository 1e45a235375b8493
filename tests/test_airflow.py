"""The Airflow chapter: DAG integrity (as Airflow's DAG processor sees the folder),
task unit tests, the pod variant, and the pipeline steps the tasks call.

Airflow runs in .venv-airflow (`make airflow`), driven through coursekit.airflow;
the steps of resilia.pipeline are tested here directly.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from coursekit.airflow import VENV, AirflowError, AirflowHome
from coursekit.policy import unavailable
from coursekit.versions import tool_version
from resilia import pipeline
from resilia.data import generate_customers
from tests.helpers import ROOT

DAGS = ROOT / "examples" / "airflow" / "dags"
STEPS = ["extract", "validate", "train", "evaluate", "publish", "score"]


@pytest.fixture(scope="module")
def home():
    """One AIRFLOW_HOME, hence one Airflow driver process, for the whole module."""
    if not (VENV / ".stamp").exists():
        unavailable(f"{VENV.name} is missing: make airflow")
    with AirflowHome() as home:
        yield home


@pytest.fixture(scope="module")
def report(home):
    # First request to the driver: no task has imported pandas & co. in it yet.
    return home.report()


def test_dag_folder_imports_without_errors(report):
    assert report["import_errors"] == {}, "\n".join(
        f"{path}: {error}" for path, error in report["import_errors"].items()
    )
    assert set(report["dags"]) == {"resilia_monthly", "resilia_monthly_pods"}


def test_monthly_dag_has_the_expected_tasks_and_dependencies(report):
    tasks = report["dags"]["resilia_monthly"]["tasks"]
    upstream = {task_id: task["upstream"] for task_id, task in tasks.items()}
    assert upstream == {
        "extract": [],
        "validate": ["extract"],
        "train": ["extract", "validate"],
        "evaluate": ["extract", "train"],
        "publish": ["evaluate"],
        "score": ["extract", "publish"],
    }
    assert tasks["train"]["retries"] == 0 and tasks["train"]["pool"] == "training"
    assert all(tasks[t]["retries"] == 2 for t in STEPS if t != "train")


def test_both_dags_are_monthly_on_data_intervals_without_catchup(report):
    for dag in report["dags"].values():
        assert dag["timetable"] == "CronDataIntervalTimetable"
        assert dag["schedule"] == "0 0 1 * *"
        assert dag["catchup"] is False
    # One policy, in resilia_common.py: the pods retry as the TaskFlow tasks do, after
    # 5 minutes, then twice as long (Airflow's backoff is a multiplier: True is 1).
    for dag in report["dags"].values():
        for task in dag["tasks"].values():
            assert task["retry_delay_s"] == 300 and task["retry_backoff"] == 2
    pods = report["dags"]["resilia_monthly_pods"]["tasks"]
    assert all(task["retries"] == 2 for task in pods.values())


def test_parsing_the_dags_imports_nothing_heavy(report):
    # The DAG processor re-reads the folder every ~30 s: no pandas, no training.
    assert report["heavy_modules"] == []
    assert report["parse_seconds"] < 15  # generous: a shared CI machine


def test_a_broken_dag_is_reported_with_its_file_and_error(home, tmp_path):
    source = (DAGS / "resilia_monthly.py").read_text()
    (tmp_path / "resilia_monthly.py").write_text(
        source.replace("tags=[", "tags=[undefined_name, ")
    )
    shutil.copy(DAGS / "resilia_common.py", tmp_path)  # the module the DAG imports
    broken = home.report(tmp_path)
    [(path, error)] = broken["import_errors"].items()
    assert Path(path).name == "resilia_monthly.py"
    assert "NameError" in error and "undefined_name" in error
    assert broken["dags"] == {}


def test_pod_variant_runs_the_same_steps_in_the_service_image(home, report):
    tasks = report["dags"]["resilia_monthly_pods"]["tasks"]
    assert list(tasks) == STEPS
    assert {t["operator"] for t in tasks.values()} == {"KubernetesPodOperator"}
    for previous, step in zip(STEPS, STEPS[1:], strict=False):
        assert tasks[step]["upstream"] == [previous]
    pod = home.pod("resilia_monthly_pods", "publish", "2026-07-01")
    [container] = pod["spec"]["containers"]
    assert container["image"] == "resilia-api:0.1.0"
    assert container["command"] == ["python", "-m", "resilia.pipeline"]
    assert container["args"] == [
        "publish", "--root", "/data", "--month", "2026-06", "--min-gain", "0.01",
    ]  # fmt: skip
    assert container["volumeMounts"] == [{"mountPath": "/data", "name": "resilia-data"}]
    assert container["resources"]["limits"] == {"memory": "1Gi"}


def test_pod_commands_run_the_whole_month(tmp_path, capsys):
    # The pods' command lines, run in order here (what the image would run).
    outputs = {}
    for step in STEPS:
        extra = ["--min-gain", "0.01"] if step == "publish" else []
        args = [step, "--root", str(tmp_path), "--month", "2026-01", *extra]
        assert pipeline.main(args) == 0, capsys.readouterr().err
        outputs[step] = json.loads(capsys.readouterr().out)
    assert outputs["validate"]["rows"] == pipeline.DEFAULT_ROWS
    assert outputs["publish"]["published"] is True
    assert Path(outputs["score"]).name == "2026-01.csv"


def test_publish_task_requires_a_gain_above_the_threshold(home, tmp_path):
    candidate = home.data / "candidate.joblib"
    candidate.parent.mkdir(parents=True, exist_ok=True)
    candidate.write_bytes(b"model")
    verdicts = {}
    for gain in (0.005, 0.02):
        evaluation = {
            "month": "2026-03", "candidate": str(candidate),
            "candidate_auc": 0.8 + gain, "incumbent": "old", "incumbent_auc": 0.8,
        }  # fmt: skip
        verdicts[gain] = home.call("resilia_monthly", "publish", evaluation=evaluation)
    assert not verdicts[0.005]["published"]
    assert verdicts[0.02]["published"]
    assert (home.data / "decisions" / "2026-03.json").exists()


def test_validate_task_fails_without_retry_and_says_why(home):
    bad = home.data / "bad.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("customer_id,plan\nC000001,essentiel\n")
    with pytest.raises(AirflowError) as failure:
        home.call("resilia_monthly", "validate", paths={"customers": str(bad)})
    assert "AirflowFailException" in str(failure.value)
    assert "missing columns" in str(failure.value)


def test_a_task_without_its_variable_says_which_one(home):
    # The variable comes from the environment (AIRFLOW_VAR_RESILIA_DATA_DIR): unset
    # for this call only, in the module's driver process.
    with pytest.raises(AirflowError, match="resilia_data_dir is not set"):
        home.call(
            "resilia_monthly",
            "publish",
            evaluation={},
            env={"AIRFLOW_VAR_RESILIA_DATA_DIR": None},
        )


# --- The steps the tasks call (resilia.pipeline), without Airflow -----------------


@pytest.fixture(scope="module")
def january(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    paths = pipeline.extract(root, "2026-01", rows=600)
    return root, paths


def test_extract_is_deterministic_and_splits_by_customer(january, tmp_path):
    root, paths = january
    again = pipeline.extract(tmp_path, "2026-01", rows=600)
    for name in ("customers", "train", "holdout"):
        assert pipeline.sha256(paths[name]) == pipeline.sha256(again[name])
    train, holdout = pd.read_csv(paths["train"]), pd.read_csv(paths["holdout"])
    assert len(train) + len(holdout) == 600
    assert not set(train["customer_id"]) & set(holdout["customer_id"])
    assert not list(root.rglob("*.tmp"))


def test_validate_accepts_the_generated_month(january):
    summary = pipeline.validate(january[1]["customers"])
    assert summary["rows"] == 600 and 0 < summary["churn_rate"] < 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: c.drop(columns=["plan"]), "missing columns plan"),
        (lambda c: c.head(50), "50 rows, at least 200 expected"),
        (lambda c: pd.concat([c, c.head(3)]), "3 duplicated customer_id"),
        (
            lambda c: c.assign(plan=c["plan"].where(c.index != 7, "gold")),
            "1 invalid rows (first: line 9, plan",
        ),
        (
            lambda c: c.assign(churned=c["churned"].astype(str).replace("True", "yes")),
            "churned must be True or False",
        ),
    ],
)
def test_validate_names_the_file_and_the_problem(tmp_path, damage, message):
    path = tmp_path / "customers-2026-02.csv"
    damage(generate_customers(300, seed=1)).to_csv(path, index=False)
    with pytest.raises(pipeline.DataValidationError) as failure:
        pipeline.validate(path)
    assert str(failure.value).startswith("customers-2026-02.csv: ")
    assert message in str(failure.value)


def test_validate_refuses_a_file_that_is_not_a_csv(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(pipeline.DataValidationError, match="not a readable CSV"):
        pipeline.validate(path)


def test_publish_only_a_better_model_and_rerun_changes_nothing(tmp_path):
    for month in ("2026-01", "2026-02"):
        paths = pipeline.extract(tmp_path, month, rows=800)
        candidate = pipeline.train_candidate(tmp_path, month, paths["train"])
        evaluation = pipeline.evaluate(tmp_path, month, candidate, paths["holdout"])
        pipeline.publish(tmp_path, evaluation)
    first = json.loads((tmp_path / "decisions" / "2026-01.json").read_text())
    assert first["published"] and first["reason"] == "no model in service yet"
    # A candidate that does not beat the incumbent is refused, and said so.
    evaluation = {
        **evaluation, "candidate_auc": 0.70, "incumbent": first["candidate"],
        "incumbent_auc": 0.71,
    }  # fmt: skip
    refused = pipeline.publish(tmp_path, {**evaluation, "month": "2026-03"})
    assert not refused["published"] and "kept the model in service" in refused["reason"]
    # Re-running January later still compares it with no model, as the first time.
    before = {p: pipeline.sha256(p) for p in tmp_path.rglob("*") if p.is_file()}
    paths = pipeline.extract(tmp_path, "2026-01", rows=800)
    candidate = pipeline.train_candidate(tmp_path, "2026-01", paths["train"])
    again = pipeline.evaluate(tmp_path, "2026-01", candidate, paths["holdout"])
    pipeline.publish(tmp_path, again)
    after = {p: pipeline.sha256(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_score_uses_the_model_in_service_for_that_month(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model in service for 2026-01"):
        pipeline.score(tmp_path, "2026-01", tmp_path / "none.csv")


def test_months_are_checked():
    for bad in ("2026-13", "2026-1", "26-01", "2026-01-01", None):
        with pytest.raises(ValueError, match="month must be written YYYY-MM"):
            pipeline.check_month(bad)
    assert pipeline.month_seed("2026-03") == 202603


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    code = pipeline.main(["validate", "--root", str(tmp_path), "--month", "2026-01"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("resilia.pipeline validate: error: ")
    assert "Traceback" not in err


def test_airflow_home_leaves_nothing_behind():
    with AirflowHome() as home:
        path = home.path
        driver = home.start_driver()
        assert driver.poll() is None
    assert not path.exists()
    assert driver.poll() is not None, "the driver process outlived its home"


def test_the_lock_installs_the_airflow_of_the_versions_file():
    lock = (ROOT / "requirements" / "airflow.txt").read_text()
    assert f"\napache-airflow=={tool_version('airflow')}\n" in lock
