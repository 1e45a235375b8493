"""The same monthly pipeline, each step in its own Kubernetes pod.

Every task starts the service image of the Docker chapter and runs one step of
``resilia.pipeline`` in it; the steps share files through a volume (a
PersistentVolumeClaim). Airflow only needs the cncf.kubernetes provider: pandas and
scikit-learn live in the image, not in the scheduler.
"""

from __future__ import annotations

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import dag
from kubernetes.client import models as k8s
from resilia_common import MONTHLY

IMAGE = "resilia-api:0.1.0"
"""The service image built in the Docker chapter (it contains ``resilia``)."""
DATA = "/data"
MONTH = "{{ data_interval_start.strftime('%Y-%m') }}"
STEPS = ("extract", "validate", "train", "evaluate", "publish", "score")

volume = k8s.V1Volume(
    name="resilia-data",
    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
        claim_name="resilia-data"
    ),
)
mount = k8s.V1VolumeMount(name="resilia-data", mount_path=DATA)
resources = k8s.V1ResourceRequirements(
    requests={"cpu": "500m", "memory": "512Mi"}, limits={"memory": "1Gi"}
)


@dag(
    dag_id="resilia_monthly_pods",
    **MONTHLY,  # the same calendar and retries as resilia_monthly
    tags=["resilia", "fil-rouge", "kubernetes"],
)
def resilia_monthly_pods():
    previous = None
    for step in STEPS:
        pod = KubernetesPodOperator(
            task_id=step,
            name=f"resilia-{step}",
            image=IMAGE,
            cmds=["python", "-m", "resilia.pipeline"],
            arguments=[step, "--root", DATA, "--month", MONTH]
            + (["--min-gain", "0.01"] if step == "publish" else []),
            volumes=[volume],
            volume_mounts=[mount],
            container_resources=resources,
            labels={"app.kubernetes.io/part-of": "resilia"},
            get_logs=True,
            on_finish_action="delete_pod",
        )
        if previous is not None:
            previous >> pod
        previous = pod


resilia_monthly_pods()
