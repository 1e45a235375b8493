"""The monthly batch pipeline, one function per step: extract, validate, train,
evaluate, publish, score.

An orchestrator (the Airflow DAGs of ``examples/airflow``) calls these steps; each
takes and returns paths, never tables, and each is idempotent and atomic:

- the month decides everything (data seed, file names), not the day the step runs;
- a file is written under a temporary name then renamed, so a step that dies leaves
  either the old file or the new one, never half of one;
- running a step again for the same month rewrites the same bytes.

Layout under ``root``::

    landing/customers-2026-01.csv     optional: a month delivered by a source system
    months/2026-01/customers.csv      the month's customers (validated, then scored)
    months/2026-01/train.csv          80 % of them, to train
    months/2026-01/holdout.csv        the other 20 %, kept to compare models
    models/2026-01/model.joblib       the candidate trained on the month
    decisions/2026-01.json            candidate vs model in service, and the verdict
    serving/model.joblib              the model in service (latest published)
    scores/2026-01.csv                the month's customers scored by it

``python -m resilia.pipeline <step> --root ... --month 2026-01`` runs one step (the
pod variant of the DAG does this in the service image).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from resilia.config import load_settings
from resilia.data import generate_customers
from resilia.model import (
    load_model,
    predict_churn_proba,
    risk_band,
    save_model,
    train,
)
from resilia.schema import REQUIRED_COLUMNS, TARGET_COLUMN, Customer

MONTH_PATTERN = re.compile(r"^(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])$")
DEFAULT_ROWS = 2_000
MIN_ROWS = 200
HOLDOUT_EVERY = 5
"""A customer whose number is a multiple of this goes to the holdout set (20 %)."""


class DataValidationError(ValueError):
    """The month's data break a rule: the pipeline stops before training."""


def check_month(month: str) -> str:
    """Return ``month`` if it is written YYYY-MM, else raise ``ValueError``."""
    if not isinstance(month, str) or not MONTH_PATTERN.match(month):
        raise ValueError(f"month must be written YYYY-MM, got {month!r}")
    return month


def month_seed(month: str) -> int:
    """The data seed of a month: 2026-01 -> 202601 (same month, same data)."""
    return int(check_month(month).replace("-", ""))


def sha256(path: str | Path) -> str:
    """The SHA-256 digest of a file, in hexadecimal."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` through ``write(tmp)`` then rename: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_json(path: Path, payload: dict) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    return _atomic(path, lambda tmp: tmp.write_text(text))


def _read_customers(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"postcode": str, "customer_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path} is not a readable CSV: {exc}") from None


def extract(root: str | Path, month: str, rows: int = DEFAULT_ROWS) -> dict[str, str]:
    """The month's customers, split into train and holdout files.

    A file delivered in ``landing/`` is the source when it exists; otherwise the
    month is generated (the course's stand-in for a source system).
    """
    root = Path(root)
    landing = root / "landing" / f"customers-{check_month(month)}.csv"
    if landing.exists():
        customers = _read_customers(landing)
    else:
        customers = generate_customers(rows, seed=month_seed(month))
    number = pd.to_numeric(
        customers.get("customer_id", pd.Series(dtype=str)).astype(str).str[1:],
        errors="coerce",
    )
    in_holdout = (number % HOLDOUT_EVERY == 0).to_numpy()
    out = root / "months" / month
    paths = {}
    everyone = pd.Series(True, index=customers.index).to_numpy()
    parts = (("customers", everyone), ("train", ~in_holdout), ("holdout", in_holdout))
    for name, part in parts:
        paths[name] = str(
            _atomic(
                out / f"{name}.csv",
                lambda tmp, p=part: customers[p].to_csv(
                    tmp, index=False, date_format="%Y-%m-%d"
                ),
            )
        )
    return paths


def validate(path: str | Path, min_rows: int = MIN_ROWS) -> dict:
    """Check the file against the customer schema; raise with the reasons if not."""
    customers = _read_customers(path)
    name = Path(path).name
    missing = [
        c
        for c in ("customer_id", *REQUIRED_COLUMNS, TARGET_COLUMN)
        if c not in customers
    ]
    if missing:
        raise DataValidationError(f"{name}: missing columns {', '.join(missing)}")
    problems = []
    if len(customers) < min_rows:
        problems.append(f"{len(customers)} rows, at least {min_rows} expected")
    if (duplicates := customers["customer_id"].duplicated()).any():
        problems.append(f"{int(duplicates.sum())} duplicated customer_id")
    labels = customers[TARGET_COLUMN].astype(str).str.lower()
    if not labels.isin({"true", "false"}).all():
        problems.append(f"{TARGET_COLUMN} must be True or False")
    fields = customers[["customer_id", *REQUIRED_COLUMNS]]
    fields = fields.astype(object).where(fields.notna(), None)
    bad_rows, first_error = 0, None
    for line, record in enumerate(fields.to_dict(orient="records"), start=2):
        try:
            Customer.model_validate(record)
        except ValidationError as exc:
            bad_rows += 1
            if first_error is None:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"])
                first_error = f"line {line}, {where}: {error['msg']}"
    if bad_rows:
        problems.append(f"{bad_rows} invalid rows (first: {first_error})")
    if problems:
        raise DataValidationError(f"{name}: " + "; ".join(problems))
    churn = labels.eq("true").mean()
    return {"rows": len(customers), "churn_rate": round(float(churn), 4)}


def train_candidate(
    root: str | Path, month: str, train_path: str | Path, env: str = "staging"
) -> str:
    """Train on the month and save the candidate (quality gate of ``env`` applied)."""
    settings = load_settings(env)
    customers = _read_customers(train_path)
    pipeline, report = train(customers, settings)
    target = Path(root) / "models" / check_month(month) / "model.joblib"
    _atomic(target, lambda tmp: save_model(pipeline, report, tmp))
    return str(target)


def incumbent(root: str | Path, month: str) -> str | None:
    """The model in service when ``month`` starts: the last one published before it.

    Read from the decisions, not from ``serving/``: re-running an old month compares
    it with the model it met the first time, so the verdict does not change.
    """
    return _last_published(root, lambda other: other < check_month(month))


def in_service(root: str | Path, month: str) -> str | None:
    """The model in service once ``month``'s decision is taken."""
    return _last_published(root, lambda other: other <= check_month(month))


def _last_published(root: str | Path, keep: Callable[[str], bool]) -> str | None:
    decisions = sorted((Path(root) / "decisions").glob("*.json"))
    published = [
        decision["candidate"]
        for path in decisions
        if keep(path.stem) and (decision := json.loads(path.read_text()))["published"]
    ]
    return published[-1] if published else None


def _auc(model_path: str, holdout: pd.DataFrame) -> float:
    pipeline, _ = load_model(model_path)
    proba = predict_churn_proba(pipeline, holdout)
    labels = holdout[TARGET_COLUMN].astype(str).str.lower().eq("true").astype(int)
    return round(float(roc_auc_score(labels, proba)), 4)


def evaluate(
    root: str | Path, month: str, candidate: str, holdout_path: str | Path
) -> dict:
    """ROC AUC of the candidate and of the model in service on the month's holdout."""
    holdout = _read_customers(holdout_path)
    current = incumbent(root, month)
    return {
        "month": month,
        "candidate": candidate,
        "candidate_auc": _auc(candidate, holdout),
        "incumbent": current,
        "incumbent_auc": _auc(current, holdout) if current else None,
    }


def publish(root: str | Path, evaluation: dict, min_gain: float = 0.0) -> dict:
    """Put the candidate in service only if it beats the incumbent by more than
    ``min_gain``; record the decision either way."""
    root = Path(root)
    needed = ("month", "candidate", "candidate_auc", "incumbent_auc")
    missing = (
        [k for k in needed if k not in evaluation]
        if isinstance(evaluation, dict)
        else needed
    )
    if missing:
        raise ValueError(f"not an evaluation (see evaluate()): no {', '.join(missing)}")
    before = evaluation["incumbent_auc"]
    gain = None if before is None else round(evaluation["candidate_auc"] - before, 4)
    published = gain is None or gain > min_gain
    if gain is None:
        reason = "no model in service yet"
    elif published:
        reason = f"ROC AUC +{gain} over the model in service"
    else:
        reason = (
            f"ROC AUC {gain:+} (needs more than +{min_gain}): kept the model in service"
        )
    decision = {**evaluation, "gain": gain, "published": published, "reason": reason}
    _write_json(root / "decisions" / f"{evaluation['month']}.json", decision)
    serving = _last_published(root, lambda other: True)
    if serving:
        model = Path(serving)
        _atomic(
            root / "serving" / "model.joblib",
            lambda tmp: tmp.write_bytes(model.read_bytes()),
        )
    return decision


def score(root: str | Path, month: str, customers_path: str | Path) -> str:
    """Score the month's customers with the model in service for that month."""
    model = in_service(root, month)
    if model is None:
        raise FileNotFoundError(f"no model in service for {month}: run publish first")
    pipeline, _ = load_model(model)
    root = Path(root)
    customers = _read_customers(customers_path)
    proba = predict_churn_proba(pipeline, customers).round(4)
    scores = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "churn_probability": proba,
            "risk": [risk_band(p) for p in proba],
        }
    )
    target = root / "scores" / f"{check_month(month)}.csv"
    return str(_atomic(target, lambda tmp: scores.to_csv(tmp, index=False)))


def main(argv: list[str] | None = None) -> int:
    """One step per call, JSON on stdout: what a pod or a shell runs."""
    parser = argparse.ArgumentParser(prog="python -m resilia.pipeline")
    parser.add_argument(
        "step", choices=["extract", "validate", "train", "evaluate", "publish", "score"]
    )
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--month", required=True)
    parser.add_argument("--env", default="staging")
    parser.add_argument("--min-gain", type=float, default=0.0)
    args = parser.parse_args(argv)
    month_dir = args.root / "months" / args.month
    candidate = str(args.root / "models" / args.month / "model.joblib")
    try:
        if args.step == "extract":
            result = extract(args.root, args.month)
        elif args.step == "validate":
            result = validate(month_dir / "customers.csv")
        elif args.step == "train":
            result = train_candidate(
                args.root, args.month, month_dir / "train.csv", args.env
            )
        elif args.step == "evaluate":
            result = evaluate(
                args.root, args.month, candidate, month_dir / "holdout.csv"
            )
            _write_json(month_dir / "evaluation.json", result)
        elif args.step == "publish":
            evaluation = json.loads((month_dir / "evaluation.json").read_text())
            result = publish(args.root, evaluation, args.min_gain)
        else:
            result = score(args.root, args.month, month_dir / "customers.csv")
    except (OSError, ValueError) as exc:
        print(f"resilia.pipeline {args.step}: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
