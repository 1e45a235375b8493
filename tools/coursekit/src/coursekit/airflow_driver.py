"""Run inside .venv-airflow (never imported by the book's kernel): parse a DAG folder
or test-run a DAG, and print one JSON document on stdout.

    python airflow_driver.py report <dags_folder>
    python airflow_driver.py test <dags_folder> <dag_id> <logical_date>...
    python airflow_driver.py call <dags_folder> <dag_id> <task_id> <json_kwargs>
    python airflow_driver.py pod <dags_folder> <dag_id> <task_id> <logical_date>
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

OFFLINE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: student, user: {token: none}}]
contexts: [{name: offline, context: {cluster: offline, user: student, namespace: user-student}}]
current-context: offline
"""


def report(folder: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    start = time.perf_counter()
    bag = DagBag(dag_folder=folder)
    seconds = time.perf_counter() - start
    dags = {}
    for dag_id, dag in sorted(bag.dags.items()):
        dags[dag_id] = {
            "file": dag.fileloc,
            "timetable": type(dag.timetable).__name__,
            "schedule": getattr(dag.timetable, "expression", None),
            "catchup": dag.catchup,
            "tasks": {
                t.task_id: {
                    "upstream": sorted(t.upstream_task_ids),
                    "operator": type(t).__name__,
                    "retries": t.retries,
                    "pool": t.pool,
                }
                for t in dag.tasks
            },
        }
    return {
        "import_errors": dict(bag.import_errors),
        "dags": dags,
        "parse_seconds": round(seconds, 2),
        "heavy_modules": sorted(
            m for m in ("pandas", "sklearn", "resilia") if m in sys.modules
        ),
    }


def test(folder: str, dag_id: str, dates: list[str]) -> list[dict]:
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=folder).dags[dag_id]
    runs = []
    for date in dates:
        print(f"AIRFLOW-DRIVER-RUN {date}", flush=True)
        start = time.perf_counter()
        run = dag.test(logical_date=pendulum.parse(date))
        runs.append(
            {
                "run_id": run.run_id,
                "logical_date": date,
                "state": str(run.state),
                "data_interval": [
                    run.data_interval_start.isoformat(),
                    run.data_interval_end.isoformat(),
                ],
                "seconds": round(time.perf_counter() - start, 1),
                "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
            }
        )
    return runs


def pod(folder: str, dag_id: str, task_id: str, date: str) -> dict:
    """The pod a KubernetesPodOperator task would create for a run (no cluster)."""
    # The operator loads a kube config to label the pod; this one is never contacted.
    kubeconfig = Path(tempfile.mkdtemp()) / "offline.kubeconfig"
    kubeconfig.write_text(OFFLINE_KUBECONFIG)
    os.environ["KUBECONFIG"] = str(kubeconfig)
    import pendulum
    from airflow.dag_processing.dagbag import DagBag
    from airflow.timetables.interval import CronDataIntervalTimetable
    from kubernetes.client import ApiClient

    dag = DagBag(dag_folder=folder).dags[dag_id]
    task = dag.get_task(task_id)
    # The run of `date` covers the interval that ends then, as the scheduler says.
    timetable = CronDataIntervalTimetable(
        dag.timetable.expression, dag.timetable.timezone
    )
    interval = timetable.infer_manual_data_interval(run_after=pendulum.parse(date))
    context = {
        "data_interval_start": interval.start,
        "data_interval_end": interval.end,
        "logical_date": interval.start,
    }
    task.render_template_fields(context)
    return ApiClient().sanitize_for_serialization(task.build_pod_request_obj())


def call(folder: str, dag_id: str, task_id: str, kwargs: str) -> object:
    """Call a TaskFlow task's function directly, outside any run: a unit test."""
    from airflow.dag_processing.dagbag import DagBag

    task = DagBag(dag_folder=folder).dags[dag_id].get_task(task_id)
    return task.python_callable(**json.loads(kwargs))


def main() -> None:
    logging.disable(logging.WARNING)
    command, folder, *rest = sys.argv[1:]
    if command == "report":
        result = report(folder)
    elif command == "call":
        result = call(folder, *rest)
    elif command == "pod":
        result = pod(folder, *rest)
    else:
        result = test(folder, rest[0], rest[1:])
    print("AIRFLOW-DRIVER-JSON " + json.dumps(result, default=str))


if __name__ == "__main__":
    main()
