"""Run inside .venv-airflow (never imported by the book's kernel): one long-lived
process per AIRFLOW_HOME that answers requests, so that Airflow's start-up (imports,
configuration, ORM) is paid once rather than at every step.

    python airflow_driver.py serve

Each request is one JSON line on stdin,
``{"id": ..., "command": ..., "args": [...], "env": {...}}``; the answer is one line on
stdout, ``AIRFLOW-DRIVER-JSON {"id": ..., "ok": ..., ...}``, with what the request
printed (Airflow's logs) in ``output``. Commands:

    migrate                                       the metadata database (airflow db migrate)
    report <dags_folder>                          what the DAG processor sees
    test <dags_folder> <dag_id> <logical_date>... dag.test() once per date
    call <dags_folder> <dag_id> <task_id> <json>  a TaskFlow task's function, outside a run
    pod <dags_folder> <dag_id> <task_id> <date>   the pod a KubernetesPodOperator renders
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

MARKER = "AIRFLOW-DRIVER-JSON "
OFFLINE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: student, user: {token: none}}]
contexts: [{name: offline, context: {cluster: offline, user: student, namespace: user-student}}]
current-context: offline
"""
# An exception a task raised, as its log shows it: "DataValidationError: ...".
ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception): .+)$", re.MULTILINE)


@contextlib.contextmanager
def captured():
    """Send what this process writes on its stdout and stderr (file descriptors 1
    and 2, so Airflow's logs too) to a temporary file; the text ends in the list."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    text: list[str] = []
    with tempfile.TemporaryFile() as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            file.seek(0)
            text.append(file.read().decode(errors="replace"))


def dag_bag(folder: str):
    """The folder as Airflow's DAG processor loads it: a bundle, whose folder is on
    ``sys.path``, so that a DAG file imports its sibling modules (resilia_common)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=folder, bundle_path=Path(folder))


def migrate() -> dict:
    from airflow.utils import db

    start = time.perf_counter()
    db.upgradedb()
    return {"seconds": round(time.perf_counter() - start, 1)}


def report(folder: str) -> dict:

    start = time.perf_counter()
    bag = dag_bag(folder)
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
                    "retry_delay_s": t.retry_delay.total_seconds(),
                    "retry_backoff": t.retry_exponential_backoff,
                    "pool": t.pool,
                }
                for t in dag.tasks
            },
        }
    return {
        "import_errors": dict(bag.import_errors),
        "dags": dags,
        "parse_seconds": round(seconds, 2),
        # Loaded in this process so far: ask for a report before running any task
        # (tasks import them), or this says nothing about the DAG files.
        "heavy_modules": sorted(
            m for m in ("pandas", "sklearn", "resilia") if m in sys.modules
        ),
    }


def test(folder: str, dag_id: str, *dates: str) -> list[dict]:
    import pendulum

    dag = dag_bag(folder).dags[dag_id]
    runs = []
    for date in dates:
        start = time.perf_counter()
        with captured() as log:
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
                # once each, in order
                "errors": list(dict.fromkeys(ERROR_LINE.findall(log[0]))),
            }
        )
    return runs


def pod(folder: str, dag_id: str, task_id: str, date: str) -> dict:
    """The pod a KubernetesPodOperator task would create for a run (no cluster)."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable
    from kubernetes.client import ApiClient

    dag = dag_bag(folder).dags[dag_id]
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

    task = dag_bag(folder).dags[dag_id].get_task(task_id)
    return task.python_callable(**json.loads(kwargs))


COMMANDS = {
    "migrate": migrate,
    "report": report,
    "test": test,
    "call": call,
    "pod": pod,
}


def answer(request: dict) -> dict:
    # Per-request environment (e.g. an Airflow variable set or unset), then restored.
    saved = {name: os.environ.get(name) for name in request.get("env", {})}
    for name, value in request.get("env", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        with captured() as output:
            try:
                result = COMMANDS[request["command"]](*request.get("args", []))
                reply = {"ok": True, "result": result}
            except Exception:  # noqa: BLE001 - reported to the caller, who raises
                reply = {"ok": False, "error": traceback.format_exc()}
        return reply | {"id": request.get("id"), "output": output[0]}
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve() -> None:
    logging.disable(logging.WARNING)
    # KubernetesPodOperator loads a kube config to label its pods: this one points at
    # nothing and is never contacted. Set before the kubernetes client is imported.
    kubeconfig = Path(tempfile.mkdtemp(prefix="airflow-driver-")) / "offline.kubeconfig"
    kubeconfig.write_text(OFFLINE_KUBECONFIG)
    os.environ["KUBECONFIG"] = str(kubeconfig)
    channel = os.fdopen(os.dup(1), "w", buffering=1)  # answers only
    os.dup2(2, 1)  # anything else printed between requests goes to stderr
    channel.write(MARKER + json.dumps({"ok": True, "result": "ready"}) + "\n")
    try:
        for line in sys.stdin:
            reply = answer(json.loads(line))
            channel.write(MARKER + json.dumps(reply, default=str) + "\n")
    finally:
        shutil.rmtree(kubeconfig.parent, ignore_errors=True)
    # Every answer is written. Leave now: after dag.test() some of Airflow's threads
    # would keep the interpreter waiting at exit.
    channel.flush()
    os._exit(0)


if __name__ == "__main__":
    serve()
