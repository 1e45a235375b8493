"""Who may call the scoring API: OAuth 2.0 bearer tokens from an OIDC provider.

The API is a *resource server*: it never sees a password. A client (the scoring job,
an application) obtains an access token from the provider, a JWT signed with the
provider's private key, and sends it in ``Authorization: Bearer <token>``. The API
checks, for each request, the signature against the public keys the provider
publishes (``jwks_uri``, found by discovery), then the issuer, the audience, the
expiry and the scopes. Answers follow RFC 6750: 401 with ``WWW-Authenticate: Bearer``
when the token is missing or invalid, 403 ``insufficient_scope`` when it is valid but
does not grant what the route needs.

``[auth] mode`` decides per environment: ``off`` (dev, the earlier chapters) or
``required`` (prod).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

import jwt
from fastapi import HTTPException, Request

from resilia.config import AuthSettings

REALM = "resilia"
ALGORITHMS = ["RS256", "ES256"]
AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"description": "Missing, expired or forged token (auth.mode required)"},
    403: {"description": "Valid token without the scope the route needs"},
}
"""Statuses of the protected routes when authentication is required."""


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (safe to show the client)."""


class ProviderUnavailable(Exception):
    """The identity provider's discovery document or keys cannot be fetched."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the token says."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]


class TokenValidator:
    """Checks access tokens issued by ``issuer`` for ``audience``.

    The provider's metadata and keys are fetched on first use, then cached: a key
    the cache does not know (the provider rotated its keys) triggers one refetch.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_client: jwt.PyJWKClient | None = None,
        leeway_s: float = 0.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.issuer, self.audience = issuer.rstrip("/"), audience
        self.leeway_s, self.timeout_s = leeway_s, timeout_s
        self._jwks_client = jwks_client
        self._lock = Lock()

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenValidator:
        return cls(
            settings.issuer,
            settings.audience,
            leeway_s=settings.leeway_s,
            timeout_s=settings.timeout_s,
        )

    def discover(self) -> str:
        """The provider's ``jwks_uri``, read from its discovery document."""
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            # The issuer is configuration, checked to be http(s) by AuthSettings.
            with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:  # nosec B310
                metadata = json.load(answer)
        except (OSError, ValueError) as exc:
            raise ProviderUnavailable(f"discovery failed at {url}: {exc}") from None
        if metadata.get("issuer", "").rstrip("/") != self.issuer:
            raise ProviderUnavailable(
                f"{url} announces issuer {metadata.get('issuer')!r}, "
                f"not {self.issuer!r}"
            )
        if "jwks_uri" not in metadata:
            raise ProviderUnavailable(f"{url} has no jwks_uri")
        return metadata["jwks_uri"]

    @property
    def jwks_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks_client is None:
                self._jwks_client = jwt.PyJWKClient(
                    self.discover(), lifespan=300, timeout=self.timeout_s
                )
            return self._jwks_client

    def validate(self, token: str) -> Principal:
        """The caller the token describes, or ``InvalidToken`` saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise InvalidToken("the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            # Refuses "none" and HMAC tokens signed with the public key as secret.
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        try:
            key = self.jwks_client.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise ProviderUnavailable(str(exc)) from None
        except jwt.PyJWKClientError:
            raise InvalidToken("the token is signed with an unknown key") from None
        except jwt.DecodeError:
            raise InvalidToken("the token is not a JWT") from None
        if header["alg"] != key.algorithm_name:
            raise InvalidToken(
                f"algorithm {header['alg']!r} does not match the provider's key"
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from another issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is invalid") from None
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("the token's scope is not a string")
        return Principal(
            subject=str(claims["sub"]),
            client_id=claims.get("client_id"),
            scopes=frozenset(scope.split()),
        )


def _challenge(
    error: str | None = None, description: str | None = None, **extra
) -> str:
    params = {"realm": REALM}
    if error:
        params["error"] = error
    if description:
        params["error_description"] = description
    params.update(extra)
    return "Bearer " + ", ".join(f'{k}="{v}"' for k, v in params.items())


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, None when absent."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme (Basic...): no bearer token was sent
    token = token.strip()
    if not token or " " in token:
        raise HTTPException(
            401,
            "malformed Authorization header",
            headers={"WWW-Authenticate": _challenge("invalid_request")},
        )
    return token


def require_scope(scope: str) -> Callable[[Request], Principal | None]:
    """A FastAPI dependency: the route needs a valid token granting ``scope``.

    With ``auth.mode = off`` it lets everything through and returns None.
    """

    def dependency(request: Request) -> Principal | None:
        validator: TokenValidator | None = request.app.state.auth
        if validator is None:
            return None
        token = bearer_token(request)
        if token is None:
            raise HTTPException(
                401,
                "authentication required",
                headers={"WWW-Authenticate": _challenge()},
            )
        try:
            principal = validator.validate(token)
        except InvalidToken as exc:
            raise HTTPException(
                401,
                str(exc),
                headers={"WWW-Authenticate": _challenge("invalid_token", str(exc))},
            ) from None
        except ProviderUnavailable:
            raise HTTPException(
                503, "identity provider unavailable", headers={"Retry-After": "1"}
            ) from None
        if scope not in principal.scopes:
            raise HTTPException(
                403,
                f"the token does not grant the scope {scope!r}",
                headers={
                    "WWW-Authenticate": _challenge("insufficient_scope", scope=scope)
                },
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_scope_{scope.replace(':', '_')}"
    return dependency


def validator_for(settings: AuthSettings) -> TokenValidator | None:
    """The validator the app uses: None when authentication is off."""
    if settings.mode == "off":
        return None
    return TokenValidator.from_settings(settings)
