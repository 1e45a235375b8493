"""Command line: ``resilia generate|settings|train|predict|serve|feature-store``.

The two services are imported only by their commands: the rest works without the
``api`` extra.
"""

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
from resilia.schema import REQUIRED_COLUMNS


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


def _read_customers(path: Path) -> pd.DataFrame:
    try:
        customers = pd.read_csv(path, dtype={"postcode": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty file"
        raise ValueError(f"{path} is not a readable customer CSV: {reason}") from None
    missing = [c for c in ("customer_id", *REQUIRED_COLUMNS) if c not in customers]
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(missing)}")
    return customers


def _predict(args: argparse.Namespace) -> None:
    pipeline, _ = load_model(args.model)
    customers = _read_customers(args.input)
    try:
        probabilities = predict_churn_proba(pipeline, customers)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{args.input}: invalid values ({exc})") from None
    result = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "churn_probability": probabilities.round(4),
        }
    )
    result.to_csv(sys.stdout, index=False)


def _server_settings(args: argparse.Namespace, section: str):
    """The settings with the command-line options applied, validated like the rest."""
    api = {"workers": args.workers} if args.workers is not None else {}
    overrides = {"api": api}
    if section == "api":
        api |= {k: v for k in ("host", "port") if (v := getattr(args, k)) is not None}
    elif args.host is not None or args.port is not None:
        url = load_settings(args.env).feature_store.url
        host, port = args.host or url.host, args.port or url.port
        overrides["feature_store"] = {"url": f"http://{host}:{port}"}
    return load_settings(args.env, overrides=overrides)


def _serve(args: argparse.Namespace) -> None:
    settings = _server_settings(args, "api")
    load_model(settings.model_path)  # a missing or corrupt model stops us here

    from resilia.serving.app import create_app
    from resilia.serving.server import serve

    app = create_app(settings) if settings.api.workers == 1 else None
    factory = "resilia.serving.app:app_from_environment"
    serve(app, factory, settings, settings.api.host, settings.api.port)


def _feature_store(args: argparse.Namespace) -> None:
    settings = _server_settings(args, "feature_store")

    from resilia.serving.feature_store import create_feature_store
    from resilia.serving.server import serve

    url = settings.feature_store.url
    app = create_feature_store(settings) if settings.api.workers == 1 else None
    factory = "resilia.serving.feature_store:store_from_environment"
    serve(app, factory, settings, url.host, url.port)


def build_parser() -> argparse.ArgumentParser:
    """The ``resilia`` command and its subcommands."""
    parser = argparse.ArgumentParser(prog="resilia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    envs = available_environments()

    p = commands.add_parser("generate", help="write a synthetic customer CSV")
    p.add_argument("--rows", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=_generate)

    p = commands.add_parser("settings", help="print the validated settings")
    p.add_argument(
        "--env", help=f"one of {', '.join(envs)} (default: $RESILIA_ENV or dev)"
    )
    p.set_defaults(func=_settings)

    p = commands.add_parser("train", help="train, check and save the model")
    p.add_argument(
        "--env", help=f"one of {', '.join(envs)} (default: $RESILIA_ENV or dev)"
    )
    p.add_argument(
        "--output", type=Path, help="model file (default: <artifacts_dir>/model.joblib)"
    )
    p.set_defaults(func=_train)

    p = commands.add_parser("predict", help="score a customer CSV")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--input", type=Path, required=True)
    p.set_defaults(func=_predict)

    for name, func, what in (
        ("serve", _serve, "run the scoring API (settings: api.host, api.port)"),
        (
            "feature-store",
            _feature_store,
            "run the feature store (settings: feature_store.url)",
        ),
    ):
        p = commands.add_parser(name, help=what)
        p.add_argument(
            "--env", help=f"one of {', '.join(envs)} (default: $RESILIA_ENV or dev)"
        )
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--workers", type=int, help="processes (default: api.workers)")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit status (an error is one line)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (
        ConfigurationError,
        ModelQualityError,
        OSError,
        ValueError,
        KeyError,
    ) as exc:
        print(f"resilia: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
