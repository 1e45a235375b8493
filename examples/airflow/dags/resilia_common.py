"""What the two monthly DAGs share: their calendar, catch-up and retry policy.

Not a DAG: a module of the DAG folder, which Airflow puts on ``sys.path``, so that
``resilia_monthly`` and ``resilia_monthly_pods`` import it and cannot drift apart.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable

MONTHLY = {
    # One run per month, processing the month that just ended: the run of
    # 2026-02-01 covers [2026-01-01, 2026-02-01) and its data_interval_start says so.
    "schedule": CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,  # no burst of past months when the DAG is switched on
    "max_active_runs": 1,
    "default_args": {
        "owner": "resilia",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,  # a multiplier: 5 min, then 10 (+ jitter)
    },
}
"""Arguments of ``@dag`` common to the monthly DAGs."""
