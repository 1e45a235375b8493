"""Onyxia's launcher link parser, transcribed from its source for the tests.

``InseeFrLab/onyxia``, ``web/src/ui/pages/launcher/route.ts`` (``queryStringSerializer``
and ``routeDefs.launcher``): the query is split on ``&`` then on ``=`` (exactly one per
part); keys holding a dot are Helm values (``true``/``false``/``null``, ``-`` for
unset, a number through ``parseFloat``, else a string that must read ``«…»`` once
URL-decoded); other keys are type-route parameters, URL-decoded and used as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

UNSET = object()
_DECIMAL = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FLOAT_PREFIX = re.compile(rf"\s*([+-]?(?:Infinity|{_DECIMAL}))")


class LauncherError(ValueError):
    """The launcher would reject this link (a failed ``assert`` in route.ts)."""


def parse_float(text: str) -> float | None:
    """JavaScript's ``parseFloat``: the longest numeric prefix, else NaN (None)."""
    match = _FLOAT_PREFIX.match(text)
    if not match:
        return None
    number = match.group(1)
    return float(number.replace("Infinity", "inf"))


def decode_uri_component(text: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise LauncherError(f"decodeURIComponent would throw on {text!r}")
    return unquote(text, errors="strict")


def helm_value(raw: str):
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if raw == "-":
        return UNSET
    number = parse_float(raw)
    if number is not None:
        return number
    match = re.fullmatch(r"«([^»]*)»", decode_uri_component(raw))
    if match is None:
        raise LauncherError(f"{raw!r} is neither a literal nor a string in «»")
    return match.group(1)


def helm_path(key: str) -> list[str | int]:
    key = re.sub(r"(?:\\|%5c)\.", "\0", key, flags=re.IGNORECASE)
    key = re.sub(r"\[(\d+)\]", lambda m: f".\1{m.group(1)}", key)
    parts = key.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    return [int(p[1:]) if p.startswith("\1") else p.replace("\0", ".") for p in parts]


@dataclass
class Launch:
    catalog: str
    chart: str
    params: dict[str, str]
    helm_values: dict[tuple, object] = field(default_factory=dict)

    def value(self, dotted: str):
        return self.helm_values[tuple(helm_path(dotted))]


def parse_launch_url(url: str) -> Launch:
    parts = urlsplit(url)
    match = re.fullmatch(r"/launcher/([^/]+)/([^/]+)", parts.path)
    if match is None:
        raise LauncherError(f"{parts.path!r} is not a launcher route")
    params: dict[str, str] = {}
    helm: dict[tuple, object] = {}
    for part in parts.query.split("&"):
        pieces = part.split("=")
        if len(pieces) != 2:
            raise LauncherError(f"{part!r} must hold exactly one '='")
        key, raw = pieces
        if "." in key and not key.startswith("oidc-spa."):
            helm[tuple(helm_path(key))] = helm_value(raw)
        else:
            params[key] = decode_uri_component(raw)
    return Launch(match.group(1), match.group(2), params, helm)
