"""Bearer tokens on the API (resilia.serving.auth), with a key pair made by the test
and a discovery document served on loopback; the security notebook uses the real
OpenID Connect provider."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from coursekit.runner import free_port
from resilia.config import ConfigurationError, load_settings
from resilia.schema import EXAMPLE_CUSTOMER
from resilia.serving.app import create_app
from resilia.serving.auth import InvalidToken, TokenValidator

AUDIENCE = "https://api.resilia.example"
# RSA key generation is slow: one attacker key for the module.
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Provider:
    """A key pair and the two documents an OIDC provider publishes."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.issuer}/jwks",
                    }
                elif self.path == "/jwks":
                    public = jwt.algorithms.RSAAlgorithm.to_jwk(
                        provider.key.public_key(), as_dict=True
                    )
                    body = {"keys": [{**public, "kid": provider.kid, "use": "sig"}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def token(self, key=None, kid=None, alg="RS256", **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "scoring-job",
            "client_id": "scoring-job",
            "iat": now,
            "exp": now + 300,
            "scope": "churn:predict",
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload, key or self.key, algorithm=alg, headers={"kid": kid or self.kid}
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def provider():
    provider = Provider()
    yield provider
    provider.close()


@pytest.fixture
def client(trained, provider):
    settings = load_settings(
        "prod",
        environ={},
        overrides={
            "feature_store": {"url": f"http://127.0.0.1:{free_port()}"},
            "auth": {"issuer": provider.issuer, "audience": AUDIENCE},
            "tracing": {"enabled": False},
        },
    )
    with TestClient(create_app(settings, *trained)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_prod_requires_auth_and_dev_does_not():
    assert load_settings("prod", environ={}).auth.mode == "required"
    assert load_settings("dev", environ={}).auth.mode == "off"
    assert load_settings("staging", environ={}).auth.mode == "off"


def test_an_unknown_auth_mode_is_refused_at_load_time():
    with pytest.raises(ConfigurationError, match="auth.mode"):
        load_settings("prod", environ={"RESILIA_AUTH__MODE": "maybe"})


def test_a_valid_token_with_the_scope_is_served(client, provider):
    response = client.post(
        "/predict", json=EXAMPLE_CUSTOMER, headers=bearer(provider.token())
    )
    assert response.status_code == 200, response.text


def test_no_token_is_401_with_a_bearer_challenge(client):
    response = client.post("/predict", json=EXAMPLE_CUSTOMER)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="resilia"'
    assert response.json() == {"detail": "authentication required"}


def test_another_scheme_counts_as_no_token(client):
    response = client.post(
        "/predict",
        json=EXAMPLE_CUSTOMER,
        headers={"Authorization": "Basic dXNlcjpwdw=="},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="resilia"'


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda p: p.token(exp=int(time.time()) - 10), "expired"),
        (lambda p: p.token(aud="https://reports.resilia.example"), "another audience"),
        (lambda p: p.token(iss="https://evil.example"), "another issuer"),
        (
            lambda p: p.token(key=ATTACKER_KEY),
            "signature is invalid",
        ),
        (lambda p: p.token(kid="unknown"), "unknown key"),
        (lambda p: p.token(sub=None), "'sub'"),
        (lambda p: "not-a-jwt", "not a JWT"),
        (lambda p: p.token(alg="HS256", key="x" * 32), "'HS256' is not accepted"),
        (
            lambda p: jwt.encode({"sub": "x"}, None, algorithm="none"),
            "'none' is not accepted",
        ),
        (
            lambda p: p.token(key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"),
            "does not match",
        ),
    ],
)
def test_a_token_that_cannot_be_trusted_is_401(client, provider, make_token, reason):
    response = client.post(
        "/predict", json=EXAMPLE_CUSTOMER, headers=bearer(make_token(provider))
    )
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="resilia", error="invalid_token"')
    assert reason in response.json()["detail"]
    assert "Traceback" not in response.text


def test_a_malformed_header_is_401_invalid_request(client):
    response = client.post(
        "/predict", json=EXAMPLE_CUSTOMER, headers={"Authorization": "Bearer a b"}
    )
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_a_valid_token_without_the_scope_is_403(client, provider):
    token = provider.token()  # churn:predict only, like the scoring job
    response = client.get("/customers/C000042/churn", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="resilia", error="insufficient_scope", scope="customers:read"'
    )


def test_health_and_metrics_stay_open(client):
    assert client.get("/health/live").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_provider_down_is_503_not_a_trace(trained, provider):
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    token = provider.token(iss=issuer)
    validator = TokenValidator(issuer, AUDIENCE, timeout_s=0.5)
    settings = load_settings("prod", environ={}, overrides={"auth": {"issuer": issuer}})
    app = create_app(settings, *trained)
    with TestClient(app) as client:
        app.state.auth = validator
        response = client.post("/predict", json=EXAMPLE_CUSTOMER, headers=bearer(token))
    assert response.status_code == 503
    assert response.json() == {"detail": "identity provider unavailable"}


def test_the_validator_returns_the_caller(provider):
    validator = TokenValidator(provider.issuer, AUDIENCE)
    principal = validator.validate(provider.token(scope="churn:predict customers:read"))
    assert principal.subject == "scoring-job"
    assert principal.scopes == {"churn:predict", "customers:read"}
    with pytest.raises(InvalidToken, match="expired"):
        validator.validate(provider.token(exp=int(time.time()) - 1))


def test_a_discovery_document_for_another_issuer_is_refused(provider):
    from resilia.serving.auth import ProviderUnavailable

    validator = TokenValidator(provider.issuer + "/realms/other", AUDIENCE)
    with pytest.raises(ProviderUnavailable, match="404|announces"):
        validator.discover()
