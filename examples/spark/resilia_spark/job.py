"""The resilia batch scoring job, written once for local mode and Kubernetes.

Every step reuses the resilia package: customers come from ``generate_customers``,
features from ``build_features``, the model from ``load_model`` or
``train_from_settings``. Spark only distributes them: Python code runs on batches of
rows (``mapInPandas``, pandas UDF), aggregations and joins run in the JVM.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from resilia.data import generate_customers
from resilia.model import CHURN_THRESHOLD, WATCH_THRESHOLD
from resilia.schema import (
    CATEGORICAL_FEATURES,
    CUSTOMER_TABLE,
    FEATURE_COLUMNS,
    NUMERIC_FEATURES,
    TARGET_COLUMN,
    build_features,
)
from resilia_spark.s3 import s3a_conf
from resilia_spark.session import JavaNotFoundError, get_spark

# Reference table for the join: the région of each département served by resilia.
DEPARTMENT_REGIONS = {
    "06": "Provence-Alpes-Côte d'Azur",
    "13": "Provence-Alpes-Côte d'Azur",
    "31": "Occitanie",
    "33": "Nouvelle-Aquitaine",
    "34": "Occitanie",
    "35": "Bretagne",
    "38": "Auvergne-Rhône-Alpes",
    "44": "Pays de la Loire",
    "59": "Hauts-de-France",
    "67": "Grand Est",
    "69": "Auvergne-Rhône-Alpes",
    "75": "Île-de-France",
}

# Spark types of resilia's logical types (resilia.schema.CUSTOMER_TABLE).
SPARK_TYPES = {
    "string": "string",
    "date": "timestamp_ntz",
    "float": "double",
    "int": "bigint",
    "bool": "boolean",
}
CUSTOMER_SCHEMA = ", ".join(f"{c} {SPARK_TYPES[t]}" for c, t in CUSTOMER_TABLE.items())
FEATURE_SCHEMA = ", ".join(
    [
        "customer_id string",
        *(f"{name} double" for name in NUMERIC_FEATURES),
        *(f"{name} string" for name in CATEGORICAL_FEATURES),
        f"{TARGET_COLUMN} boolean",
    ]
)


def read_customers(spark, path: str):
    """Customer table from Parquet (a local path or s3a://...)."""
    return spark.read.parquet(str(path))


def generate_customers_df(spark, n: int, seed: int = 42, partitions: int = 8):
    """``n`` customers generated in parallel: one resilia chunk per partition."""
    partitions = max(1, min(partitions, n))
    sizes = [n // partitions + (i < n % partitions) for i in range(partitions)]
    offsets = np.cumsum([0, *sizes[:-1]]).tolist()
    seeds = [
        int(s.generate_state(1)[0])
        for s in np.random.SeedSequence(seed).spawn(partitions)
    ]

    def chunks(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for i in batch["id"]:
                chunk = generate_customers(sizes[i], seed=seeds[i])
                chunk["customer_id"] = [
                    f"C{offsets[i] + j:06d}" for j in range(1, sizes[i] + 1)
                ]
                yield chunk

    ids = spark.range(0, partitions, numPartitions=partitions)
    return ids.mapInPandas(chunks, schema=CUSTOMER_SCHEMA)


def features(customers):
    """resilia's ``build_features`` on each batch; keeps the id and the label."""

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            out = build_features(frame)
            out.insert(0, "customer_id", frame["customer_id"].to_numpy())
            out[TARGET_COLUMN] = frame[TARGET_COLUMN].to_numpy()
            yield out

    return customers.mapInPandas(batches, schema=FEATURE_SCHEMA)


def churn_probability_udf(pipeline):
    """A pandas UDF scoring a struct of feature columns with the trained pipeline."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def churn_probability(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(pipeline.predict_proba(frame)[:, 1], index=frame.index)

    return churn_probability


def score(customers, pipeline):
    """Features plus ``churn_probability`` for every customer."""
    from pyspark.sql import functions as F

    feats = features(customers)
    proba = churn_probability_udf(pipeline)(F.struct(*FEATURE_COLUMNS))
    return feats.withColumn("churn_probability", proba)


def regions_df(spark):
    rows = sorted(DEPARTMENT_REGIONS.items())
    return spark.createDataFrame(rows, "department string, region string")


def department_summary(scored):
    """Per département: customers, observed churn, mean score, customers at risk."""
    from pyspark.sql import functions as F

    return (
        scored.groupBy("department")
        .agg(
            F.count("*").alias("customers"),
            F.avg(F.col("churned").cast("double")).alias("churn_rate"),
            F.avg("churn_probability").alias("mean_probability"),
            F.sum((F.col("churn_probability") >= CHURN_THRESHOLD).cast("long")).alias(
                "at_risk"
            ),
        )
        .orderBy("department")
    )


# exercise: spark-risk-bands
def with_risk_band(scored):
    """``scored`` plus ``risk_band``: resilia.model's bands, as a Spark expression."""
    from pyspark.sql import functions as F

    probability = F.col("churn_probability")
    band = (
        F.when(probability >= CHURN_THRESHOLD, "high")
        .when(probability >= WATCH_THRESHOLD, "medium")
        .otherwise("low")
    )
    return scored.withColumn("risk_band", band)


# end of exercise


def region_summary(scored, regions):
    """Same figures per région: a join with the small reference table, broadcast."""
    from pyspark.sql import functions as F

    return (
        scored.join(F.broadcast(regions), "department")
        .groupBy("region")
        .agg(
            F.count("*").alias("customers"),
            F.avg("churn_probability").alias("mean_probability"),
            F.sum((F.col("churn_probability") >= CHURN_THRESHOLD).cast("long")).alias(
                "at_risk"
            ),
        )
        .orderBy("region")
    )


def write_scores(scored, path: str) -> None:
    """Scores as Parquet, one directory per département (department=69/...)."""
    (
        scored.select("customer_id", "plan", "department", "churn_probability")
        .write.mode("overwrite")
        .partitionBy("department")
        .parquet(str(path))
    )


def load_pipeline(spark, path: str):
    """The chapter-1 model from any path Spark can read (local file, s3a://...)."""
    from resilia.model import load_model

    content = (
        spark.read.format("binaryFile").load(str(path)).select("content").head()[0]
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model.joblib"
        local.write_bytes(content)
        pipeline, _report = load_model(local)
    return pipeline


def run(spark, customers, pipeline, output: str) -> dict:
    """Score, summarise, write; returns what a scheduler would log."""
    scored = score(customers, pipeline).cache()
    departments = department_summary(scored)
    output = str(output).rstrip("/")
    write_scores(scored, f"{output}/scores")
    departments.write.mode("overwrite").parquet(f"{output}/departments")
    rows = departments.collect()
    scored.unpersist()
    return {
        "customers": sum(r["customers"] for r in rows),
        "departments": len(rows),
        "at_risk": sum(r["at_risk"] for r in rows),
        "output": output,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score resilia customers with Spark.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="customer Parquet (path or s3a:// URL)")
    source.add_argument(
        "--generate-rows", type=int, help="generate this many customers"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument(
        "--model", help="model.joblib from `resilia train` (default: train one)"
    )
    parser.add_argument(
        "--output", required=True, help="output folder (path or s3a:// URL)"
    )
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> int:
    args = parse_args(argv)
    try:
        # master=None: spark-submit or spark-defaults.conf says local or Kubernetes.
        spark = get_spark("resilia-scoring", master=None, conf=s3a_conf(environ))
    except JavaNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.input:
            customers = read_customers(spark, args.input)
        else:
            customers = generate_customers_df(
                spark, args.generate_rows, args.seed, args.partitions
            )
        if args.model:
            pipeline = load_pipeline(spark, args.model)
        else:
            from resilia.config import load_settings
            from resilia.model import train_from_settings

            pipeline, report = train_from_settings(load_settings())
            print(json.dumps({"trained": report.to_dict()}), flush=True)
        print(json.dumps(run(spark, customers, pipeline, args.output)), flush=True)
    finally:
        spark.stop()
    return 0
