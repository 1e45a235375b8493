"""The customer store in PostgreSQL: schema, roles, the rights of access and erasure.

Every connection checks the server's certificate and its host name
(``sslmode=verify-full``): it is not a setting. The table is derived from
``resilia.schema.CUSTOMER_TABLE``, so the store, the generated dataset and the model
agree on the columns. Three roles share the store (``ROLES``): the service reads and
writes customers, the analyst sees only pseudonymised columns, and only the vault
role reads the token mappings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from resilia.config import DatabaseSettings
from resilia.schema import CUSTOMER_ID_PATTERN, CUSTOMER_TABLE

SSLMODE = "verify-full"
SQL_TYPES = {
    "string": "text",
    "date": "date",
    "float": "double precision",
    "int": "integer",
    "bool": "boolean",
}
ROLES = ("resilia_app", "resilia_analyst", "resilia_vault")
"""The service, the analysts (pseudonymised view only), the token vault's holder."""


class DatabaseError(ValueError):
    """A bad request to the store: unknown role, malformed customer id..."""


def check_customer_id(customer_id: Any) -> str:
    """``customer_id`` if it matches the schema's pattern, else a DatabaseError."""
    if not isinstance(customer_id, str) or not re.fullmatch(
        CUSTOMER_ID_PATTERN, customer_id
    ):
        raise DatabaseError(
            f"malformed customer id {customer_id!r}: expected C followed by 6 digits"
        )
    return customer_id


def check_role(role: Any) -> str:
    """``role`` if it is one of ``ROLES``, else :class:`DatabaseError`."""
    if role not in ROLES:
        raise DatabaseError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def conninfo(settings: DatabaseSettings, role: str, password: str) -> str:
    """The libpq connection string of ``role``: always TLS with a verified host name."""
    check_role(role)
    params = {
        "host": settings.host,
        "port": settings.port,
        "dbname": settings.dbname,
        "user": role,
        "password": password,
        "sslmode": SSLMODE,
        "sslrootcert": settings.sslrootcert,
        "connect_timeout": settings.connect_timeout_s,
    }
    if settings.hostaddr:
        params["hostaddr"] = settings.hostaddr
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def connect(settings: DatabaseSettings, role: str, password: str) -> psycopg.Connection:
    """A connection as ``role``, over TLS as the settings require (autocommit)."""
    return psycopg.connect(conninfo(settings, role, password), autocommit=True)


def customers_ddl() -> str:
    """``CREATE TABLE customers``, one column per entry of ``CUSTOMER_TABLE``."""
    columns = [
        f"{name} {SQL_TYPES[kind]} NOT NULL"
        + (" PRIMARY KEY" if name == "customer_id" else "")
        for name, kind in CUSTOMER_TABLE.items()
    ]
    columns.append("recorded_at timestamptz NOT NULL DEFAULT now()")
    return "CREATE TABLE customers (\n  " + ",\n  ".join(columns) + "\n)"


# Pseudonymised view for analysts: keyed hash instead of the id, no name, no e-mail,
# age band and département instead of birth date and postcode.
SCHEMA_SQL = """
CREATE SCHEMA vault;
CREATE TABLE vault.identity_tokens (
  token text PRIMARY KEY,
  customer_id text NOT NULL REFERENCES customers ON DELETE CASCADE
);
CREATE TABLE vault.card_tokens (
  token text PRIMARY KEY,
  pan text NOT NULL
);
CREATE TABLE payment_cards (
  customer_id text PRIMARY KEY REFERENCES customers ON DELETE CASCADE,
  card_token text NOT NULL UNIQUE,
  last4 char(4) NOT NULL
);
CREATE VIEW customers_pseudonymised AS
  SELECT t.token AS customer_token,
         (date_part('year', age(DATE '2025-12-31', c.birth_date))::int / 10) * 10
           AS age_band,
         left(c.postcode, 2) AS department,
         c.plan, c.monthly_fee, c.rides_last_month, c.support_calls_90d,
         c.late_payments_12m, c.churned
  FROM customers c JOIN vault.identity_tokens t USING (customer_id);
"""

GRANTS_SQL = """
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO resilia_app, resilia_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON customers, payment_cards TO resilia_app;
GRANT SELECT ON customers_pseudonymised TO resilia_analyst;
GRANT USAGE ON SCHEMA vault TO resilia_vault;
GRANT SELECT ON vault.identity_tokens, vault.card_tokens TO resilia_vault;
"""


def create_store(admin: psycopg.Connection, passwords: Mapping[str, str]) -> None:
    """Create the tables, the view, the roles (with passwords) and their rights."""
    for role in ROLES:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(passwords[role])
            )
        )
    admin.execute(customers_ddl())
    admin.execute(SCHEMA_SQL)
    admin.execute(GRANTS_SQL)


def _rows(customers: pd.DataFrame) -> Iterable[tuple]:
    columns = list(CUSTOMER_TABLE)
    for record in customers[columns].itertuples(index=False):
        yield tuple(
            value.date() if isinstance(value, pd.Timestamp) else _plain(value)
            for value in record
        )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_customers(
    conn: psycopg.Connection,
    customers: pd.DataFrame,
    recorded_at: datetime | None = None,
) -> int:
    """Insert the customers (COPY); ``recorded_at`` defaults to now."""
    columns = [*CUSTOMER_TABLE, "recorded_at"]
    stamp = recorded_at or datetime.now().astimezone()
    copy = sql.SQL("COPY customers ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(copy) as writer:
        for row in _rows(customers):
            writer.write_row((*row, stamp))
    return len(customers)


# --- Rights of the person -----------------------------------------------------------

PERSON_TABLES = {
    "customers": "SELECT * FROM customers WHERE customer_id = %s",
    "payment_cards": "SELECT * FROM payment_cards WHERE customer_id = %s",
    "identity_tokens": "SELECT * FROM vault.identity_tokens WHERE customer_id = %s",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def export_person(admin: psycopg.Connection, customer_id: str) -> dict[str, list]:
    """Right of access: every row about one customer, table by table, as JSON-ready
    dicts. Raises DatabaseError for a malformed id or an unknown customer."""
    check_customer_id(customer_id)
    export: dict[str, list] = {}
    with admin.cursor(row_factory=psycopg.rows.dict_row) as cur:
        for table, query in PERSON_TABLES.items():
            rows = cur.execute(query, (customer_id,)).fetchall()
            export[table] = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
    if not export["customers"]:
        raise DatabaseError(f"no customer {customer_id} in the store")
    return export


def erase_person(admin: psycopg.Connection, customer_id: str) -> dict[str, int]:
    """Right to erasure in the store: the customer's rows and everything that refers to
    them (cards and their vault entries, tokens). Returns the rows deleted per table."""
    check_customer_id(customer_id)
    with admin.transaction():
        cards = admin.execute(
            "DELETE FROM vault.card_tokens WHERE token IN "
            "(SELECT card_token FROM payment_cards WHERE customer_id = %s)",
            (customer_id,),
        ).rowcount
        tokens = admin.execute(
            "SELECT count(*) FROM vault.identity_tokens WHERE customer_id = %s",
            (customer_id,),
        ).fetchone()[0]
        card_rows = admin.execute(
            "SELECT count(*) FROM payment_cards WHERE customer_id = %s", (customer_id,)
        ).fetchone()[0]
        customers = admin.execute(
            "DELETE FROM customers WHERE customer_id = %s", (customer_id,)
        ).rowcount  # cascades to payment_cards and vault.identity_tokens
    if customers == 0:
        raise DatabaseError(f"no customer {customer_id} in the store")
    return {
        "customers": customers,
        "payment_cards": card_rows,
        "identity_tokens": tokens,
        "card_tokens": cards,
    }


def scrub_files(paths: Iterable[Path], needles: Iterable[str]) -> dict[str, int]:
    """Erasure outside the database: remove every line that mentions one of ``needles``
    (the id, the e-mail, the tokens) from the service's logs, traces and derived files.
    Returns the number of lines removed per file."""
    needles = [n for n in needles if n]
    removed: dict[str, int] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not any(n in line for n in needles)]
        if len(kept) != len(lines):
            path.write_text("".join(kept), encoding="utf-8")
        removed[str(path)] = len(lines) - len(kept)
    return removed


def traces_of(admin: psycopg.Connection, needles: Iterable[str]) -> list[str]:
    """Where the store still mentions one of ``needles``: ``table`` names whose rows,
    read as text, contain one of them (every table of the public and vault schemas)."""
    tables = admin.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('public', 'vault') AND table_type = 'BASE TABLE'"
    ).fetchall()
    found = []
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{} AS t WHERE t::text LIKE %s").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        for needle in needles:
            if admin.execute(query, (f"%{needle}%",)).fetchone()[0]:
                found.append(f"{schema}.{table}")
    return sorted(set(found))


def enforce_retention(
    admin: psycopg.Connection, retention_days: int, now: datetime
) -> int:
    """Delete the customers whose record is older than ``retention_days`` at ``now``
    (their cards and tokens go with them). Returns the number of customers deleted."""
    if retention_days < 1:
        raise DatabaseError(f"retention must be at least one day, got {retention_days}")
    cutoff = now - timedelta(days=retention_days)
    with admin.transaction():
        admin.execute(
            "DELETE FROM vault.card_tokens WHERE token IN (SELECT p.card_token FROM "
            "payment_cards p JOIN customers c USING (customer_id) "
            "WHERE c.recorded_at < %s)",
            (cutoff,),
        )
        return admin.execute(
            "DELETE FROM customers WHERE recorded_at < %s", (cutoff,)
        ).rowcount


# exercise: reglementation-rectification
RECTIFIABLE = ("first_name", "last_name", "email", "postcode")


def rectify_person(
    admin: psycopg.Connection, customer_id: str, changes: Mapping[str, str]
) -> int:
    """Right to rectification: update the person's own details (``RECTIFIABLE``
    columns only) and stamp the record; returns the number of rows updated."""
    check_customer_id(customer_id)
    unknown = sorted(set(changes) - set(RECTIFIABLE))
    if unknown or not changes:
        raise DatabaseError(
            f"cannot rectify {', '.join(unknown) or 'nothing'}; "
            f"rectifiable: {', '.join(RECTIFIABLE)}"
        )
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
        for k in changes
    )
    query = sql.SQL(
        "UPDATE customers SET {}, recorded_at = now() WHERE customer_id = {}"
    ).format(assignments, sql.Placeholder("customer_id"))
    updated = admin.execute(query, {**changes, "customer_id": customer_id}).rowcount
    if updated == 0:
        raise DatabaseError(f"no customer {customer_id} in the store")
    return updated


# end of exercise


def export_json(export: Mapping[str, list]) -> str:
    """A subject-access export as stable, readable JSON."""
    return json.dumps(export, ensure_ascii=False, indent=2, sort_keys=True)
