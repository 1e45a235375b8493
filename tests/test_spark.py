"""The Spark chapter: the job code, the Kubernetes files and what chapters/spark.md shows."""

import base64
import json
import os
import re
import subprocess
import sys

import kubernetes_validate
import numpy as np
import pandas as pd
import pytest
import yaml
from resilia_kubernetes.cluster import service_account_from_token

from coursekit.policy import unavailable
from resilia.config import load_settings
from resilia.data import DEPARTMENTS, generate_customers
from resilia.model import (
    CHURN_THRESHOLD,
    predict_churn_proba,
    save_model,
    train_from_settings,
)
from resilia.schema import FEATURE_COLUMNS, build_features
from resilia_spark import bench, job, k8s
from resilia_spark.s3 import S3_ENV_VARS, redact, s3a_conf
from resilia_spark.session import (
    JavaNotFoundError,
    check_java,
    get_spark,
    jvm_process,
    stop_spark,
)
from tests.helpers import ROOT

SPARK_DIR = ROOT / "examples" / "spark"

# PySpark 4.3 warns about pandas 3 on every conversion; the tests compare results instead.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:PySpark does not yet fully support pandas:FutureWarning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The copy keyword is deprecated:DeprecationWarning"
    ),
]

CHAPTER = (ROOT / "chapters" / "spark.md").read_text(encoding="utf-8")
ONYXIA_ENV = {
    "AWS_S3_ENDPOINT": "minio.lab.sspcloud.fr",
    "AWS_ACCESS_KEY_ID": "TESTKEY",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_SESSION_TOKEN": "test-token",
    "AWS_DEFAULT_REGION": "us-east-1",
}
NOWHERE = {
    "PATH": "/nonexistent",
    "JAVA_HOME": "/nonexistent/jdk",
    "HOME": "/nonexistent",
}


# --- Java -------------------------------------------------------------------


def _java_or_skip():
    try:
        return check_java()
    except JavaNotFoundError as exc:
        unavailable(f"no Java here: {exc}")


def test_java_is_found_and_recent_enough():
    java = _java_or_skip()
    assert java.version >= 17 and os.access(java.executable, os.X_OK)


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"PATH": "/nonexistent"}, "no `java` was found"),
        (NOWHERE, "JAVA_HOME=/nonexistent/jdk"),
    ],
    ids=["no-java-on-path", "bad-java-home"],
)
def test_missing_java_is_explained(environ, names):
    with pytest.raises(JavaNotFoundError) as caught:
        check_java(environ)
    message = str(caught.value)
    assert (
        names in message
        and "Java 17" in message
        and "openjdk-17-jre-headless" in message
    )
    # In a notebook, IPython prints this instead of a stack trace.
    assert caught.value._render_traceback_() == [f"JavaNotFoundError: {message}"]


def _without_java(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "JAVA_HOME")}
    return {**env, **NOWHERE}


def test_job_without_java_exits_with_a_message_not_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SPARK_DIR / "score_customers.py"), "--generate-rows", "10"]
        + ["--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=_without_java(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: Spark needs Java 17+")
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_session_helper_without_java_in_ipython_shows_the_message_only(tmp_path):
    code = "from resilia_spark.session import get_spark; get_spark()"
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--colors=nocolor", "-c", code],
        capture_output=True,
        text=True,
        env=_without_java(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "JavaNotFoundError: Spark needs Java 17+" in output
    assert "Traceback" not in output and "py4j" not in output


# --- The job, on a local session ---------------------------------------------


@pytest.fixture(scope="module")
def spark():
    _java_or_skip()
    session = get_spark(
        "resilia-tests",
        master="local[2]",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"},
    )
    jvm = jvm_process()
    yield session
    assert stop_spark(session) == 0
    assert jvm.poll() is not None, "the JVM is still running after stop_spark"


@pytest.fixture(scope="module")
def pipeline():
    model, _ = train_from_settings(load_settings("dev", environ={}))
    return model


@pytest.fixture(scope="module")
def customers_pd():
    return generate_customers(3_000, seed=7)


@pytest.fixture(scope="module")
def customers(spark, customers_pd, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "customers.parquet"
    customers_pd.to_parquet(path, row_group_size=1_000, index=False)
    return job.read_customers(spark, path)


def test_session_is_local_without_ui(spark):
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.sparkContext.uiWebUrl is None
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_generated_customers_are_deterministic_and_unique(spark):
    first = job.generate_customers_df(spark, 1_000, seed=3, partitions=3).toPandas()
    again = job.generate_customers_df(spark, 1_000, seed=3, partitions=3).toPandas()
    pd.testing.assert_frame_equal(first, again)
    ids = first["customer_id"]
    assert ids.is_unique and len(ids) == 1_000
    assert set(ids) == {f"C{i:06d}" for i in range(1, 1_001)}


def test_features_are_resilias_build_features(customers, customers_pd):
    spark_features = job.features(customers).toPandas().set_index("customer_id")
    expected = build_features(customers_pd).set_index(customers_pd["customer_id"])
    pd.testing.assert_frame_equal(
        spark_features.loc[expected.index, list(FEATURE_COLUMNS)],
        expected,
        check_dtype=False,
    )


def test_pandas_udf_scores_equal_predict_churn_proba(customers, customers_pd, pipeline):
    scored = (
        job.score(customers, pipeline)
        .select("customer_id", "churn_probability")
        .toPandas()
    )
    scores = scored.set_index("customer_id")["churn_probability"].loc[
        customers_pd["customer_id"]
    ]
    assert np.array_equal(
        scores.to_numpy(), predict_churn_proba(pipeline, customers_pd)
    )


def test_model_saved_by_resilia_loads_through_spark(
    spark, pipeline, customers_pd, tmp_path
):
    path = save_model(
        pipeline,
        train_from_settings(load_settings("dev", environ={}))[1],
        tmp_path / "m.joblib",
    )
    loaded = job.load_pipeline(spark, path)
    sample = customers_pd.head(50)
    assert np.array_equal(
        predict_churn_proba(loaded, sample), predict_churn_proba(pipeline, sample)
    )


def test_run_writes_partitioned_scores_and_a_summary(
    spark, customers, customers_pd, pipeline, tmp_path
):
    summary = job.run(spark, customers, pipeline, str(tmp_path / "out"))
    departments = customers_pd["postcode"].str[:2]
    assert summary["customers"] == len(customers_pd)
    assert summary["departments"] == departments.nunique()
    folders = {p.name for p in (tmp_path / "out" / "scores").iterdir() if p.is_dir()}
    assert folders == {f"department={d}" for d in departments.unique()}
    written = pd.read_parquet(tmp_path / "out" / "departments")
    assert written["customers"].sum() == len(customers_pd)
    expected_at_risk = (
        predict_churn_proba(pipeline, customers_pd) >= CHURN_THRESHOLD
    ).sum()
    assert summary["at_risk"] == written["at_risk"].sum() == expected_at_risk


def test_region_table_covers_every_department():
    assert set(job.DEPARTMENT_REGIONS) == set(DEPARTMENTS)


def test_engines_agree_on_the_benchmark_query(spark, customers_pd, tmp_path):
    path = tmp_path / "customers.parquet"
    customers_pd.to_parquet(path, index=False)
    reference = bench.normalise(bench.query_pandas(str(path)))
    assert reference["customers"].sum() == len(customers_pd)
    pd.testing.assert_frame_equal(
        bench.normalise(bench.query_duckdb(str(path))), reference
    )
    pd.testing.assert_frame_equal(
        bench.normalise(bench.query_spark(spark, str(path))), reference
    )


def test_benchmark_measures_a_fresh_process(tmp_path):
    path = tmp_path / "customers.parquet"
    generate_customers(500, seed=1).to_parquet(path, index=False)
    measured = bench.measure("pandas", path, tmp_path / "result.csv")
    assert measured["engine"] == "pandas" and 0 < measured["seconds"] < 60
    assert 20 < measured["peak_mib"] < 4_000
    assert pd.read_csv(tmp_path / "result.csv")["customers"].sum() == 500


# --- S3 settings from Onyxia's variables -------------------------------------


def test_s3a_conf_maps_onyxias_variables():
    conf = s3a_conf(ONYXIA_ENV)
    assert conf == {
        "spark.hadoop.fs.s3a.endpoint": "minio.lab.sspcloud.fr",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.access.key": "TESTKEY",
        "spark.hadoop.fs.s3a.secret.key": "test-secret",
        "spark.hadoop.fs.s3a.session.token": "test-token",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        ),
    }
    assert (
        set(redact(conf).values()) & {"TESTKEY", "test-secret", "test-token"} == set()
    )


def test_s3a_conf_edge_cases():
    assert s3a_conf({}) == {}
    plain = s3a_conf({"AWS_S3_ENDPOINT": "http://localhost:9000/"})
    assert plain["spark.hadoop.fs.s3a.endpoint"] == "localhost:9000"
    assert plain["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    no_token = {k: v for k, v in ONYXIA_ENV.items() if k != "AWS_SESSION_TOKEN"}
    assert s3a_conf(no_token)["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        "SimpleAWSCredentialsProvider"
    )
    assert "spark.hadoop.fs.s3a.secret.key" not in s3a_conf(
        ONYXIA_ENV, credentials=False
    )
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY is missing"):
        s3a_conf({"AWS_S3_ENDPOINT": "minio", "AWS_ACCESS_KEY_ID": "k"})


# --- Kubernetes files ----------------------------------------------------------


def _documents():
    for path in (k8s.DRIVER_TEMPLATE, k8s.EXECUTOR_TEMPLATE, k8s.RBAC_MANIFEST):
        for document in yaml.safe_load_all(path.read_text()):
            yield pytest.param(document, id=f"{path.name}:{document['kind']}")


def test_kubernetes_version_is_pinned():
    assert re.fullmatch(r"1\.\d+\.\d+", k8s.KUBERNETES_VERSION)


@pytest.mark.parametrize("document", list(_documents()))
def test_manifest_is_valid_in_strict_mode(document):
    kubernetes_validate.validate(document, k8s.KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field():
    broken = yaml.safe_load(k8s.EXECUTOR_TEMPLATE.read_text())
    broken["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolcy"):
        kubernetes_validate.validate(broken, k8s.KUBERNETES_VERSION, strict=True)


def test_pod_templates_name_the_containers_spark_configures():
    properties = k8s.read_properties()
    for role, path in (
        ("driver", k8s.DRIVER_TEMPLATE),
        ("executor", k8s.EXECUTOR_TEMPLATE),
    ):
        pod = yaml.safe_load(path.read_text())
        names = [c["name"] for c in pod["spec"]["containers"]]
        assert names == [
            properties[f"spark.kubernetes.{role}.podTemplateContainerName"]
        ]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_rbac_lets_the_driver_manage_its_executors():
    documents = {
        d["kind"]: d for d in yaml.safe_load_all(k8s.RBAC_MANIFEST.read_text())
    }
    rules = documents["Role"]["rules"]
    granted = {
        (r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]
    }
    for resource in ("pods", "services", "configmaps"):
        for verb in ("create", "get", "list", "watch", "delete"):
            assert (resource, verb) in granted
    binding = documents["RoleBinding"]
    account = documents["ServiceAccount"]["metadata"]
    assert binding["subjects"][0]["name"] == account["name"] == "resilia-spark"
    assert binding["roleRef"]["name"] == documents["Role"]["metadata"]["name"]


def test_properties_enable_dynamic_allocation_in_cluster_mode():
    properties = k8s.read_properties()
    assert properties["spark.submit.deployMode"] == "cluster"
    assert properties["spark.dynamicAllocation.enabled"] == "true"
    assert properties["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
    assert properties["spark.kubernetes.executor.deleteOnTermination"] == "true"


def test_submit_command_targets_kubernetes_with_templates_account_and_s3():
    target = k8s.Target(namespace="user-test", service_account="sa-test", image="img:1")
    command = k8s.submit_command(
        target, ["--generate-rows", "10", "--output", "s3a://b/o"], ONYXIA_ENV
    )
    conf = dict(
        command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--conf"
    )
    assert (
        command[command.index("--master") + 1]
        == "k8s://https://kubernetes.default.svc:443"
    )
    assert command[command.index("--deploy-mode") + 1] == "cluster"
    assert command[command.index("--properties-file") + 1] == str(k8s.PROPERTIES_FILE)
    assert conf["spark.kubernetes.namespace"] == "user-test"
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "sa-test"
    assert conf["spark.kubernetes.container.image"] == "img:1"
    assert conf["spark.kubernetes.driver.podTemplateFile"] == str(k8s.DRIVER_TEMPLATE)
    assert conf["spark.kubernetes.executor.podTemplateFile"] == str(
        k8s.EXECUTOR_TEMPLATE
    )
    assert conf["spark.hadoop.fs.s3a.endpoint"] == ONYXIA_ENV["AWS_S3_ENDPOINT"]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        for role in ("driver", "executor"):
            assert (
                conf[f"spark.kubernetes.{role}.secretKeyRef.{var}"]
                == f"resilia-s3:{var}"
            )
    assert not {"TESTKEY", "test-secret", "test-token"} & set(
        " ".join(command).split("=")
    )
    assert command[-5:] == [
        k8s.APP_FILE,
        "--generate-rows",
        "10",
        "--output",
        "s3a://b/o",
    ]


def test_job_file_in_the_image_is_the_local_script():
    dockerfile = (SPARK_DIR / "Dockerfile").read_text()
    image_path = k8s.APP_FILE.removeprefix("local://")
    assert f"COPY examples/spark/score_customers.py {image_path}" in dockerfile


def test_no_cluster_here_is_reported(tmp_path):
    cluster, reason = k8s.find_cluster(
        environ={"KUBECONFIG": str(tmp_path / "none")}, sa_dir=tmp_path
    )
    assert cluster is None and "no kubeconfig" in reason


def _token(subject):
    claims = (
        base64.urlsafe_b64encode(json.dumps({"sub": subject}).encode())
        .decode()
        .rstrip("=")
    )
    return f"header.{claims}.signature"


def test_unreachable_in_cluster_api_is_reported(tmp_path):
    (tmp_path / "token").write_text(_token("system:serviceaccount:user-test:jupyter"))
    (tmp_path / "ca.crt").write_text("not a real certificate")
    (tmp_path / "namespace").write_text("user-test")
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "9"}
    cluster, reason = k8s.find_cluster(environ=environ, sa_dir=tmp_path)
    assert (
        cluster is None
        and "https://127.0.0.1:9" in reason
        and "not reachable" in reason
    )
    assert service_account_from_token(_token("system:serviceaccount:ns:sa")) == "sa"
    assert service_account_from_token("garbage") is None


# --- What the chapter shows ------------------------------------------------------


# Code only from examples/: tests/test_chapters.py, for every chapter.


def test_chapter_shows_the_kubernetes_submission():
    for path in ("k8s/spark-k8s.conf", "k8s/driver-pod-template.yaml"):
        assert f"../examples/spark/{path}" in CHAPTER
    assert ":pyobject: submit_command" in CHAPTER
    for var in S3_ENV_VARS:
        assert var in CHAPTER
    for notion in ("k8s://", "Completed", "allocation dynamique", "serviceAccountName"):
        assert notion in CHAPTER


def test_chapter_links_its_notebooks():
    for notebook in ("spark", "spark-kubernetes"):
        assert f"../notebooks/{notebook}" in CHAPTER
        assert (ROOT / "notebooks" / f"{notebook}.ipynb").is_file()
    assert CHAPTER.count("```{graphviz}") >= 3
