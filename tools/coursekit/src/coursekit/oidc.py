"""A real OpenID Connect provider on loopback: panva's ``oidc-provider`` (npm, OpenID
Certified), configured by ``examples/securite/oidc/provider.mjs``.

Its npm dependencies are installed by ``make`` (``npm ci``, pinned by the lock file).
Client secrets are drawn at start and passed through the environment: nothing secret
is written in the repository.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import httpx

from coursekit.runner import ManagedProcess, free_port

CLIENTS = ("scoring-job", "support-app", "metrics-reader", "short-lived-job")
API_AUDIENCE = "https://api.resilia.example"


def provider_dir(root: Path) -> Path:
    return root / "examples" / "securite" / "oidc"


def missing(root: Path) -> str | None:
    """Why the provider cannot start here, or None."""
    if shutil.which("node") is None:
        return "Node.js (node) is not installed"
    if not (provider_dir(root) / "node_modules" / "oidc-provider").is_dir():
        return (
            "oidc-provider is not installed: "
            "npm ci --prefix examples/securite/oidc (make does it)"
        )
    return None


class OidcProvider(ManagedProcess):
    """The provider on a free port; ``token()`` runs the client credentials grant."""

    def __init__(self, root: Path, log_path: Path) -> None:
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        self.secrets = {client: secrets.token_urlsafe(24) for client in CLIENTS}
        env = {
            f"OIDC_SECRET_{c.upper().replace('-', '_')}": s
            for c, s in self.secrets.items()
        }
        super().__init__(
            "oidc-provider",
            ["node", "provider.mjs", str(port)],
            cwd=provider_dir(root),
            env=env,
            log_path=log_path,
            ready_url=f"{self.issuer}/.well-known/openid-configuration",
            port=port,
        )

    def token_response(
        self, client: str, scope: str, resource: str | None = None
    ) -> httpx.Response:
        data = {"grant_type": "client_credentials", "scope": scope}
        if resource:
            data["resource"] = resource
        return httpx.post(
            f"{self.issuer}/token",
            data=data,
            auth=(client, self.secrets.get(client, "")),
            timeout=10,
        )

    def token(self, client: str, scope: str, resource: str | None = None) -> str:
        answer = self.token_response(client, scope, resource)
        if answer.status_code != 200:
            raise RuntimeError(f"no token for {client}: {answer.text}")
        return answer.json()["access_token"]
