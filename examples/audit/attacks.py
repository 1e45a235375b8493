"""The attacks of the audit chapter's pentest, as data: name, request, what must happen.

Each attack is one HTTP request (or one raw socket for the slow client) against the
scoring API; the notebook sends them and checks that each is refused with the
expected status, never a 5xx, and that the service logged it. The token attacks need
the security chapter's OpenID Connect provider (``coursekit.oidc``), the brute force
its nginx front (``coursekit.nginx``).
"""

from __future__ import annotations

import json
import math
import re

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from resilia.schema import EXAMPLE_CUSTOMER


def nested(depth: int) -> bytes:
    """A JSON body nested ``depth`` levels deep."""
    return b'{"a": ' * depth + b"1" + b"}" * depth


def customer(**changes) -> bytes:
    """The schema's example customer with ``changes``, as a JSON body."""
    return json.dumps({**EXAMPLE_CUSTOMER, **changes}).encode()


JSON = {"Content-Type": "application/json"}
# name: (method, path, headers, body, expected status, OWASP API item)
ATTACKS = {
    "injection SQL dans l'identifiant": (
        "POST", "/predict", JSON, customer(customer_id="C1' OR '1'='1"), 422, "API8",
    ),
    "injection de commande dans le code postal": (
        "POST", "/predict", JSON, customer(postcode="69003; rm -rf /"), 422, "API8",
    ),
    "injection dans le chemin": (
        "GET", "/customers/C000123%27%20OR%201=1--/churn", {}, None, 422, "API8",
    ),
    "traversée de répertoire": (
        "GET", "/customers/..%2F..%2Fetc%2Fpasswd/churn", {}, None, 404, "API8",
    ),
    "traversée brute": ("GET", "/../../etc/passwd", {}, None, 404, "API9"),
    "corps surdimensionné (1 Mo)": (
        "POST", "/predict", JSON, b'{"x": "' + b"a" * 1_000_000 + b'"}', 413, "API4",
    ),
    "JSON imbriqué sur 1 000 niveaux": (
        "POST", "/predict", JSON, nested(1_000), 400, "API4",
    ),
    "champ en trop (affectation de masse)": (
        "POST", "/predict", JSON, customer(churn_probability=0.0), 422, "API3",
    ),
    "mauvais type de contenu": (
        "POST", "/predict", {"Content-Type": "text/xml"}, b"<x/>", 415, "API8",
    ),
    "méthode non prévue": ("DELETE", "/predict", {}, None, 405, "API5"),
}  # fmt: skip


def forged(claims: dict, kid: str) -> str:
    """A token with ``claims``, signed by the attacker's own key under the provider's
    key id ``kid``: it looks genuine, only the signature betrays it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def unsigned(claims: dict) -> str:
    """A token with ``claims`` and no signature at all (``alg: none``)."""
    return jwt.encode(claims, None, algorithm="none")


def token_attacks(provider, attacker_scope: str = "churn:predict customers:read"):
    """Tokens to send to ``POST /predict`` (scope ``churn:predict``), from
    ``provider`` (a started ``coursekit.oidc.OidcProvider``).

    name: (token or None, expected status, OWASP API item). The short-lived token
    is asked first: it expires 1 s after it is issued.
    """
    expired = provider.token("short-lived-job", "churn:predict")
    genuine = provider.token("scoring-job", "churn:predict")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    widened = {**claims, "scope": attacker_scope}
    other_api = "https://reports.resilia.example"
    return {
        "sans jeton": (None, 401, "API2"),
        "jeton falsifié (autre clé)": (forged(widened, kid), 401, "API2"),
        "jeton non signé (alg: none)": (unsigned(widened), 401, "API2"),
        "jeton expiré": (expired, 401, "API2"),
        "jeton d'une autre API (audience)": (
            provider.token("scoring-job", "churn:predict", resource=other_api),
            401,
            "API2",
        ),
        "jeton valide sans le scope": (
            provider.token("metrics-reader", "metrics:read"),
            403,
            "API5",
        ),
        "jeton valide (témoin)": (genuine, 200, "—"),
    }


def rate_limit(conf: str) -> tuple[int, int]:
    """``(rate per second, burst)`` of the ``limit_req`` in an nginx configuration."""
    rate = re.search(r"limit_req_zone\b[^;]*\brate=(\d+)r/s", conf)
    burst = re.search(r"limit_req\b[^;]*\bburst=(\d+)", conf)
    if rate is None or burst is None:
        raise ValueError("no limit_req_zone rate=<n>r/s or limit_req burst=<n> found")
    return int(rate[1]), int(burst[1])


def allowed_by_rate_limit(rate: int, burst: int, seconds: float) -> tuple[int, int]:
    """How many requests of one client nginx lets through in ``seconds``
    (``limit_req ... nodelay``, empty bucket at the start), as ``(least, most)``.

    The bucket holds ``burst`` requests beyond the one being served and empties at
    ``rate`` per second: ``burst + 1`` pass at once, then one per ``1 / rate`` s.
    """
    return burst + 1, burst + 1 + math.ceil(rate * seconds)
