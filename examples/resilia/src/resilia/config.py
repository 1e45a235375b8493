"""Per-environment settings.

The environment is chosen by the ``RESILIA_ENV`` variable (``dev`` when unset).
``resilia/settings/base.toml`` holds what all environments share and each
``<environment>.toml`` only what differs; any value can be overridden by a
``RESILIA_<SECTION>__<KEY>`` variable, e.g. ``RESILIA_LOG_LEVEL`` or
``RESILIA_MODEL__MIN_ROC_AUC``, then by the caller (command-line options). Everything
is validated before use: a typo in an environment name or a value out of range stops
the program with a clear message.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError

ENV_VAR = "RESILIA_ENV"
PREFIX = "RESILIA_"
DEFAULT_ENVIRONMENT = "dev"


class Environment(StrEnum):
    """The environments a settings file exists for."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class ConfigurationError(ValueError):
    """Raised when the environment name or a setting is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Strict):
    """How many synthetic customers to generate, and from which seed."""

    n_customers: int = Field(ge=100, le=5_000_000)
    seed: int = Field(ge=0)


class ModelSettings(_Strict):
    """Training parameters and the quality gate (``min_roc_auc``)."""

    regularization_c: float = Field(gt=0)
    test_size: float = Field(gt=0, lt=0.5)
    min_roc_auc: float = Field(ge=0.5, le=1.0)


class ApiSettings(_Strict):
    """Where the scoring API listens and the limits that protect it."""

    host: str
    port: int = Field(ge=1, le=65535)
    instrumented: bool = True
    workers: int = Field(default=1, ge=1, le=32)
    max_in_flight: int = Field(default=200, ge=1)
    max_body_bytes: int = Field(default=16_384, ge=1024)
    read_timeout_s: float = Field(default=5.0, gt=0, le=60)


class FeatureStoreSettings(_Strict):
    """Where the feature store is and how long the API waits for it."""

    url: AnyHttpUrl
    timeout_s: float = Field(gt=0, le=30)
    max_concurrency: int = Field(default=50, ge=1, le=1000)
    queue_timeout_s: float = Field(default=0.25, ge=0, le=30)


class LoggingSettings(_Strict):
    """Log format, optional file and its rotation."""

    format: Literal["json", "text"]
    file: Path | None = None
    max_bytes: int = Field(ge=1024)
    backup_count: int = Field(ge=0, le=100)


class TracingSettings(_Strict):
    """Whether spans are recorded, where, and which share of them."""

    enabled: bool
    export_path: Path | None = None
    sample_ratio: float = Field(ge=0, le=1)


class DatabaseSettings(_Strict):
    """The PostgreSQL customer store (passwords come from the environment, never here).

    TLS with host-name verification is not optional: ``resilia.database`` always
    connects with ``sslmode=verify-full`` against ``sslrootcert``.
    """

    host: str = Field(min_length=1)
    hostaddr: str | None = None
    port: int = Field(ge=1, le=65535)
    dbname: str = Field(min_length=1)
    sslrootcert: Path
    connect_timeout_s: int = Field(default=5, ge=1, le=60)
    retention_days: int = Field(ge=1)
class AuthSettings(_Strict):
    """Bearer tokens on the API (``resilia.serving.auth``): ``off`` or ``required``."""

    mode: Literal["off", "required"]
    issuer: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    audience: str = Field(min_length=1)
    leeway_s: float = Field(default=0.0, ge=0, le=60)
    timeout_s: float = Field(default=2.0, gt=0, le=30)


class Settings(_Strict):
    """All the settings of one environment, validated at load time."""

    environment: Environment
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    artifacts_dir: Path
    data: DataSettings
    model: ModelSettings
    api: ApiSettings
    feature_store: FeatureStoreSettings
    logging: LoggingSettings
    tracing: TracingSettings
    database: DatabaseSettings
    auth: AuthSettings

    @property
    def model_path(self) -> Path:
        return self.artifacts_dir / "model.joblib"


def available_environments() -> list[str]:
    """The names accepted by ``RESILIA_ENV``."""
    return [e.value for e in Environment]


def _parse_environment(name: str, origin: str) -> Environment:
    try:
        return Environment(name.strip().lower())
    except ValueError:
        valid = ", ".join(available_environments())
        raise ConfigurationError(
            f"unknown environment {name!r} (from {origin}); valid environments: {valid}"
        ) from None


def _overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Nested dict built from RESILIA_<SECTION>__<KEY> variables."""
    result: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(PREFIX) or key == ENV_VAR:
            continue
        path = key[len(PREFIX) :].lower().split("__")
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigurationError(
                    f"{key} conflicts with another RESILIA_ variable"
                )
        node[path[-1]] = value
    return result


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(name: str) -> dict[str, Any]:
    source = resources.files("resilia") / "settings" / name
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"settings/{name} is not valid TOML: {exc}") from None


def load_settings(
    environment: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and validate the settings of ``environment`` (default: $RESILIA_ENV or dev).

    ``overrides`` (nested like the TOML files, e.g. ``{"api": {"port": 8080}}``) win
    over everything else and are validated like the rest.
    """
    environ = os.environ if environ is None else environ
    if environment:
        env = _parse_environment(environment, "argument")
    else:
        env = _parse_environment(environ.get(ENV_VAR) or DEFAULT_ENVIRONMENT, ENV_VAR)
    raw = _merge(_read_toml("base.toml"), _read_toml(f"{env.value}.toml"))
    raw = _merge(raw, _overrides(environ))
    raw = _merge(raw, overrides or {})
    raw["environment"] = env.value
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(
            f"invalid settings for environment {env.value!r} (settings/base.toml, "
            f"settings/{env.value}.toml, {PREFIX}* variables, options): {problems}"
        ) from None
