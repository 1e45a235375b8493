"""Same query, three engines: pandas, DuckDB and Spark in local mode.

The query reads the customer Parquet file, derives the département and the age,
joins the région table and aggregates per région and plan. Each measurement runs in
a fresh Python process, so its peak memory is not inflated by what ran before. The
query runs twice in that process: the first run is what a one-off batch job pays
(Spark loads and compiles its code then), the second what an interactive session
pays. The parent samples the resident memory (RSS) of the process and of its
children (the JVM for Spark) every 20 ms and keeps the highest total.

    python -m resilia_spark.bench --sizes 100000,1000000 --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from resilia.data import generate_customers
from resilia.schema import DAYS_PER_YEAR, REFERENCE_DATE
from resilia_spark.job import DEPARTMENT_REGIONS

ENGINES = ("pandas", "duckdb", "spark")
COLUMNS = [
    "postcode",
    "plan",
    "birth_date",
    "monthly_fee",
    "rides_last_month",
    "churned",
]
KEYS = ["region", "plan"]
ROW_GROUP_SIZE = 100_000


def regions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        sorted(DEPARTMENT_REGIONS.items()), columns=["department", "region"]
    )


def query_pandas(path: str) -> pd.DataFrame:
    df = pd.read_parquet(path, columns=COLUMNS)
    df["department"] = df["postcode"].str[:2]
    df["age"] = (
        pd.Timestamp(REFERENCE_DATE) - df["birth_date"]
    ).dt.days / DAYS_PER_YEAR
    df = df.merge(regions_frame(), on="department")
    out = df.groupby(KEYS, as_index=False).agg(
        customers=("churned", "size"),
        churn_rate=("churned", "mean"),
        mean_fee=("monthly_fee", "mean"),
        mean_rides=("rides_last_month", "mean"),
        mean_age=("age", "mean"),
    )
    return out.sort_values(KEYS, ignore_index=True)


def query_duckdb(path: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    try:
        con.register("regions", regions_frame())
        return con.execute(
            f"""
            SELECT r.region, c.plan,
                   count(*) AS customers,
                   avg(c.churned::DOUBLE) AS churn_rate,
                   avg(c.monthly_fee) AS mean_fee,
                   avg(c.rides_last_month) AS mean_rides,
                   avg(date_diff('day', c.birth_date::DATE, DATE '{REFERENCE_DATE}')
                       / {DAYS_PER_YEAR}) AS mean_age
            FROM read_parquet(?) AS c
            JOIN regions AS r ON substr(c.postcode, 1, 2) = r.department
            GROUP BY r.region, c.plan
            ORDER BY r.region, c.plan
            """,  # nosec B608: constants only, the path is a ? parameter
            [str(path)],
        ).df()
    finally:
        con.close()


def query_spark(spark, path: str) -> pd.DataFrame:
    from pyspark.sql import functions as F

    regions = spark.createDataFrame(regions_frame())
    customers = spark.read.parquet(str(path))
    out = (
        customers.withColumn("department", F.substring("postcode", 1, 2))
        .withColumn(
            "age",
            F.datediff(F.lit(REFERENCE_DATE), F.to_date("birth_date")) / DAYS_PER_YEAR,
        )
        .join(F.broadcast(regions), "department")
        .groupBy(*KEYS)
        .agg(
            F.count("*").alias("customers"),
            F.avg(F.col("churned").cast("double")).alias("churn_rate"),
            F.avg("monthly_fee").alias("mean_fee"),
            F.avg("rides_last_month").alias("mean_rides"),
            F.avg("age").alias("mean_age"),
        )
        .orderBy(*KEYS)
    )
    return out.toPandas()


def normalise(result: pd.DataFrame) -> pd.DataFrame:
    """Comparable across engines: same column types, rounded means."""
    out = result.astype({"region": str, "plan": str, "customers": "int64"})
    means = ["churn_rate", "mean_fee", "mean_rides", "mean_age"]
    out[means] = out[means].astype(float).round(9)
    return out.sort_values(KEYS, ignore_index=True)


def prepare_inputs(sizes: list[int], workdir: Path, seed: int = 42) -> dict[int, Path]:
    """One Parquet file per size: the first n rows of one generated table."""
    workdir.mkdir(parents=True, exist_ok=True)
    customers = generate_customers(max(sizes), seed=seed)
    paths = {}
    for n in sorted(sizes):
        path = workdir / f"customers_{n}.parquet"
        customers.head(n).to_parquet(path, row_group_size=ROW_GROUP_SIZE, index=False)
        paths[n] = path
    return paths


def _worker(engine: str, path: str, result: str) -> dict:
    """Runs in the child process: the query twice (cold, then warm), timed."""
    timings = {}
    spark = None
    if engine == "spark":
        from resilia_spark.session import get_spark

        started = time.perf_counter()
        spark = get_spark("resilia-bench", master="local[2]")
        timings["session_seconds"] = time.perf_counter() - started
        query = lambda p: query_spark(spark, p)  # noqa: E731
    else:
        query = query_pandas if engine == "pandas" else query_duckdb
    try:
        for key in ("seconds", "warm_seconds"):
            start = time.perf_counter()
            out = query(path)
            timings[key] = time.perf_counter() - start
    finally:
        if spark is not None:
            from resilia_spark.session import stop_spark

            stop_spark(spark)
    out.to_csv(result, index=False)
    return timings


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def measure(engine: str, path: Path, result: Path, timeout: float = 1800) -> dict:
    """One query in a fresh process: wall time from the child, peak RSS sampled here."""
    command = [
        sys.executable,
        "-m",
        "resilia_spark.bench",
        "--worker",
        engine,
        str(path),
    ]
    command.append(str(result))
    # An argument list, no shell: spark-submit and this module's paths.
    proc = subprocess.Popen(  # nosec B603
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    watched = psutil.Process(proc.pid)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, _tree_rss(watched))
            except psutil.NoSuchProcess:
                return
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} on {path.name} failed:\n{stderr[-3000:]}")
    timings = json.loads(stdout.strip().splitlines()[-1])
    return {"engine": engine, **timings, "peak_mib": peak / 2**20}


def run_benchmark(
    sizes: list[int], workdir: Path, engines=ENGINES
) -> tuple[pd.DataFrame, dict]:
    """Every engine on every size; returns the table and the results per size."""
    inputs = prepare_inputs(sizes, workdir)
    rows, results = [], {}
    for n, path in inputs.items():
        for engine in engines:
            result = workdir / f"result_{engine}_{n}.csv"
            rows.append({"rows": n, **measure(engine, path, result)})
            results[(engine, n)] = normalise(pd.read_csv(result, dtype={"plan": str}))
    table = pd.DataFrame(rows)
    columns = [
        "rows",
        "engine",
        "seconds",
        "warm_seconds",
        "peak_mib",
        "session_seconds",
    ]
    return table[columns], results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "INPUT", "RESULT"))
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workdir", type=Path, default=Path("bench"))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    table, _ = run_benchmark(sizes, args.workdir)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
