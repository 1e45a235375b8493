"""Command line: ``resilia generate|settings|train|predict``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from resilia.config import ConfigurationError, available_environments, load_settings
from resilia.data import generate_customers
from resilia.model import (
    ModelQualityError,
    load_model,
    predict_churn_proba,
    save_model,
    train_from_settings,
)


def _generate(args: argparse.Namespace) -> None:
    customers = generate_customers(args.rows, seed=args.seed)
    customers.to_csv(args.output, index=False)
    print(json.dumps({"rows": len(customers), "output": str(args.output)}))


def _settings(args: argparse.Namespace) -> None:
    print(load_settings(args.env).model_dump_json(indent=2))


def _train(args: argparse.Namespace) -> None:
    settings = load_settings(args.env)
    pipeline, report = train_from_settings(settings)
    output = args.output or settings.artifacts_dir / "model.joblib"
    save_model(pipeline, report, output)
    print(json.dumps({**report.to_dict(), "model": str(output)}))


def _predict(args: argparse.Namespace) -> None:
    pipeline, _ = load_model(args.model)
    customers = pd.read_csv(args.input, dtype={"postcode": str})
    result = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "churn_probability": predict_churn_proba(pipeline, customers).round(4),
        }
    )
    result.to_csv(sys.stdout, index=False)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from resilia.api import create_app

    settings = load_settings(args.env)
    app = create_app(settings)
    host, port = args.host or settings.api.host, args.port or settings.api.port
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _feature_store(args: argparse.Namespace) -> None:
    import uvicorn

    from resilia.feature_store import create_feature_store

    settings = load_settings(args.env)
    url = settings.feature_store.url
    host, port = args.host or url.host, args.port or url.port
    uvicorn.run(
        create_feature_store(settings), host=host, port=port, log_level="warning", access_log=False
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resilia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    envs = available_environments()

    p = commands.add_parser("generate", help="write a synthetic customer CSV")
    p.add_argument("--rows", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=_generate)

    p = commands.add_parser("settings", help="print the validated settings")
    p.add_argument("--env", help=f"one of {', '.join(envs)} (default: $RESILIA_ENV or dev)")
    p.set_defaults(func=_settings)

    p = commands.add_parser("train", help="train, check and save the model")
    p.add_argument("--env", help=f"one of {', '.join(envs)} (default: $RESILIA_ENV or dev)")
    p.add_argument("--output", type=Path, help="model file (default: <artifacts_dir>/model.joblib)")
    p.set_defaults(func=_train)

    p = commands.add_parser("predict", help="score a customer CSV")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--input", type=Path, required=True)
    p.set_defaults(func=_predict)

    for name, func, what in (
        ("serve", _serve, "run the scoring API (settings: api.host, api.port)"),
        ("feature-store", _feature_store, "run the feature store (settings: feature_store.url)"),
    ):
        p = commands.add_parser(name, help=what)
        p.add_argument("--env", help=f"one of {', '.join(envs)} (default: $RESILIA_ENV or dev)")
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigurationError, ModelQualityError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"resilia: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
