"""Personal data as the GDPR and PCI-DSS ask: minimise, pseudonymise, anonymise.

- ``minimisation_study``: the model's score when it loses each field, one at a time;
- ``pseudonym`` (keyed hash, key outside the code) and ``tokenise`` (random tokens whose
  mapping is kept apart, in the store's vault);
- ``generalise``, ``k_anonymity``, ``l_diversity`` and ``reidentification_risk`` on a
  customer table;
- fake card numbers (``fake_card_numbers``) and what may be kept of them (``last4``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from resilia.config import Settings
from resilia.schema import REFERENCE_DATE, REQUIRED_COLUMNS, age_years

KEY_VARIABLE = "PSEUDONYMISATION_KEY"  # not RESILIA_*: those are settings
MIN_KEY_BYTES = 32


class PrivacyError(ValueError):
    """Bad input to the privacy helpers: missing key, unknown column, bad parameter."""


# --- Minimisation -------------------------------------------------------------------


def minimisation_study(
    customers: pd.DataFrame,
    settings: Settings,
    fields: Sequence[str] = REQUIRED_COLUMNS,
    repeats: int = 3,
) -> pd.DataFrame:
    """ROC AUC of resilia's model trained with every field, then without each field.

    "Without" means the field holds one constant value (its most frequent one): the
    model, its features and its training code stay resilia's own, only the
    information is gone. Each score is the mean over ``repeats`` train/test splits
    (seeds ``data.seed``, ``data.seed + 1``...), so that the noise of one split does
    not pass for a signal. Returns one row per field, sorted by the loss of AUC.
    """
    from resilia.model import train

    unknown = [f for f in fields if f not in customers.columns]
    if unknown:
        raise PrivacyError(f"unknown fields: {', '.join(unknown)}")
    if repeats < 1:
        raise PrivacyError(f"repeats must be at least 1, got {repeats}")
    splits = [
        settings.model_copy(
            update={
                "data": settings.data.model_copy(
                    update={"seed": settings.data.seed + i}
                )
            }
        )
        for i in range(repeats)
    ]

    def mean_auc(table: pd.DataFrame) -> float:
        return float(np.mean([train(table, split)[1].roc_auc for split in splits]))

    full = mean_auc(customers)
    rows = []
    for field in fields:
        masked = customers.copy()
        masked[field] = customers[field].mode().iloc[0]
        without = mean_auc(masked)
        rows.append(
            {
                "field": field,
                "roc_auc_without": round(without, 4),
                "auc_loss": round(full - without, 4),
            }
        )
    study = pd.DataFrame(rows).sort_values("auc_loss", ascending=False)
    study.attrs["roc_auc_all_fields"] = round(full, 4)
    return study.reset_index(drop=True)


# --- Pseudonymisation -----------------------------------------------------------------


def load_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The pseudonymisation key, from ``PSEUDONYMISATION_KEY`` (hexadecimal,
    at least 32 bytes): never in the code, never in git."""
    environ = os.environ if environ is None else environ
    text = environ.get(KEY_VARIABLE, "").strip()
    if not text:
        raise PrivacyError(
            f"{KEY_VARIABLE} is not set: generate a key with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` and keep it "
            "in a secret store"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise PrivacyError(f"{KEY_VARIABLE} must be hexadecimal") from None
    if len(key) < MIN_KEY_BYTES:
        raise PrivacyError(
            f"{KEY_VARIABLE} is {len(key)} bytes long; at least {MIN_KEY_BYTES} needed"
        )
    return key


def pseudonym(value: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256) of ``value``: the same value and key always give the
    same pseudonym, so tables still join; without the key nobody can recompute it."""
    if not isinstance(value, str):
        raise PrivacyError(f"can only pseudonymise text, got {type(value).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise PrivacyError(f"the key must be at least {MIN_KEY_BYTES} bytes long")
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def tokenise(
    values: Iterable[str], prefix: str = "tok_", rng: random.Random | None = None
) -> dict[str, str]:
    """A random token for each distinct value: ``{value: token}``. The token says
    nothing about the value; only the mapping (kept in the vault) gives it back.
    ``rng`` makes tokens reproducible (the notebook); the default is ``secrets``."""
    draw = rng.randbytes if rng is not None else secrets.token_bytes
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for value in values:
        if value in mapping:
            continue
        token = _token(prefix, draw)
        while token in used:
            token = _token(prefix, draw)
        mapping[value] = token
        used.add(token)
    return mapping


def _token(prefix: str, draw) -> str:
    # base32: 120 random bits in 24 characters, mostly letters (no run of digits that
    # a card-number scanner would flag)
    return prefix + base64.b32encode(draw(15)).decode().lower()


# --- Cards (PCI-DSS) ------------------------------------------------------------------


def luhn_valid(number: str) -> bool:
    """The Luhn checksum that every real card number satisfies."""
    if not isinstance(number, str):
        raise PrivacyError(f"a card number is text, got {type(number).__name__}")
    if not number.isdigit():
        return False
    total = 0
    for position, digit in enumerate(reversed(number)):
        d = int(digit)
        if position % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def fake_card_numbers(n: int, seed: int = 0) -> list[str]:
    """``n`` fake 16-digit card numbers that pass the Luhn check (reproducible)."""
    if n < 0:
        raise PrivacyError(f"n must not be negative, got {n}")
    rng = random.Random(seed)  # nosec B311: fake test data, seeded on purpose
    numbers = []
    for _ in range(n):
        body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
        check = next(d for d in "0123456789" if luhn_valid(body + d))
        numbers.append(body + check)
    return numbers


def last4(pan: str) -> str:
    """What may be shown and kept of a card number in clear: its last four digits."""
    if not (isinstance(pan, str) and pan.isdigit() and 12 <= len(pan) <= 19):
        raise PrivacyError("not a card number (12 to 19 digits)")
    return pan[-4:]


# --- Anonymisation --------------------------------------------------------------------


def generalise(
    customers: pd.DataFrame, age_width: int = 10, postcode_digits: int = 2
) -> pd.DataFrame:
    """Replace birth date and postcode by an age band and a postcode prefix, drop the
    direct identifiers. ``age_width`` in years; ``postcode_digits`` 0 to 5."""
    if age_width < 1:
        raise PrivacyError(f"age_width must be at least 1 year, got {age_width}")
    if not 0 <= postcode_digits <= 5:
        raise PrivacyError(f"postcode_digits must be 0 to 5, got {postcode_digits}")
    ages = np.floor(age_years(customers["birth_date"], REFERENCE_DATE)).astype(int)
    low = (ages // age_width) * age_width
    table = customers.drop(
        columns=["customer_id", "first_name", "last_name", "email", "birth_date"],
        errors="ignore",
    ).copy()
    table["age_band"] = [f"{a}-{a + age_width - 1}" for a in low]
    table["postcode"] = customers["postcode"].str[:postcode_digits].str.ljust(5, "*")
    return table


def _groups(table: pd.DataFrame, quasi_identifiers: Sequence[str]):
    missing = [c for c in quasi_identifiers if c not in table.columns]
    if missing or not quasi_identifiers:
        raise PrivacyError(f"unknown quasi-identifiers: {', '.join(missing) or 'none'}")
    return table.groupby(list(quasi_identifiers), observed=True, dropna=False)


def k_anonymity(table: pd.DataFrame, quasi_identifiers: Sequence[str]) -> int:
    """The size of the smallest group of rows sharing their quasi-identifiers."""
    return int(_groups(table, quasi_identifiers).size().min()) if len(table) else 0


def l_diversity(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str
) -> int:
    """The smallest number of distinct sensitive values within one group."""
    if sensitive not in table.columns:
        raise PrivacyError(f"unknown sensitive column {sensitive!r}")
    groups = _groups(table, quasi_identifiers)
    return int(groups[sensitive].nunique().min()) if len(table) else 0


def reidentification_risk(
    table: pd.DataFrame, quasi_identifiers: Sequence[str]
) -> dict[str, float]:
    """Prosecutor risk: someone who knows a person is in the table and knows their
    quasi-identifiers picks one row of their group. ``unique_share``: share of rows
    alone in their group (certain re-identification); ``max_risk``: 1/k;
    ``mean_risk``: average of 1/group size over rows."""
    sizes = _groups(table, quasi_identifiers).size()
    return {
        "unique_share": float((sizes == 1).sum() / len(table)),
        "max_risk": float(1 / sizes.min()),
        "mean_risk": float(len(sizes) / len(table)),
    }


def suppress_small_groups(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], k: int
) -> pd.DataFrame:
    """Drop the rows whose group has fewer than ``k`` rows (suppression)."""
    if k < 1:
        raise PrivacyError(f"k must be at least 1, got {k}")
    sizes = _groups(table, quasi_identifiers)[quasi_identifiers[0]].transform("size")
    return table[sizes >= k]
