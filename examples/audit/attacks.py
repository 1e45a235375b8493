"""The attacks of the audit chapter's pentest, as data: name, request, what must happen.

Each attack is one HTTP request (or one raw socket for the slow client) against the
scoring API; the notebook sends them and checks that each is refused with the
expected status, never a 5xx, and that the service logged it.
"""

from __future__ import annotations

import json

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
