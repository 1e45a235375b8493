"""The regulation chapter's claims that the notebook does not check itself: the
privacy helpers' properties, clear errors on bad input, and the PostgreSQL store run
both as root (the server drops to an unprivileged user) and as an ordinary user."""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.policy import unavailable
from coursekit.versions import tool_version
from resilia import privacy
from resilia.config import ConfigurationError, load_settings
from resilia.data import generate_customers
from resilia.schema import CUSTOMER_TABLE
from tests.helpers import ROOT

psycopg = pytest.importorskip("psycopg")
from resilia import database  # noqa: E402  (needs psycopg)

CONFIG_DIR = ROOT / "examples/reglementation/postgres"
KEY = bytes(range(32))


# --- Pseudonymisation -----------------------------------------------------------------


@given(st.text(), st.binary(min_size=32, max_size=64))
def test_a_pseudonym_is_stable_and_depends_on_the_key(value, key):
    alias = privacy.pseudonym(value, key)
    assert alias == privacy.pseudonym(value, key)
    assert re.fullmatch("[0-9a-f]{32}", alias)
    other = bytes((b + 1) % 256 for b in key)
    assert alias != privacy.pseudonym(value, other)


def test_pseudonymisation_refuses_short_keys_and_non_text():
    with pytest.raises(privacy.PrivacyError, match="at least 32 bytes"):
        privacy.pseudonym("x", b"short")
    with pytest.raises(privacy.PrivacyError, match="only pseudonymise text"):
        privacy.pseudonym(42, KEY)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "is not set"),
        ({privacy.KEY_VARIABLE: "not hex"}, "hexadecimal"),
        ({privacy.KEY_VARIABLE: "ab" * 8}, "at least 32"),
    ],
)
def test_the_key_comes_from_the_environment_or_a_clear_error(environ, message):
    with pytest.raises(privacy.PrivacyError, match=message):
        privacy.load_key(environ)
    assert privacy.load_key({privacy.KEY_VARIABLE: KEY.hex()}) == KEY


def test_the_key_variable_is_not_read_as_a_setting():
    # RESILIA_* variables are settings overrides: the key must not be one of them.
    load_settings("dev", environ={privacy.KEY_VARIABLE: KEY.hex()})


@given(st.lists(st.text(max_size=8), max_size=50))
def test_tokens_are_one_per_distinct_value_and_never_collide(values):
    mapping = privacy.tokenise(values)
    assert set(mapping) == set(values)
    assert len(set(mapping.values())) == len(mapping)
    assert all(re.fullmatch("tok_[a-z2-7]{24}", t) for t in mapping.values())


def test_seeded_tokens_are_reproducible_and_default_tokens_are_not():
    ids = ["C000001", "C000002"]
    assert privacy.tokenise(ids, rng=random.Random(1)) == privacy.tokenise(
        ids, rng=random.Random(1)
    )
    assert privacy.tokenise(ids) != privacy.tokenise(ids)


# --- Cards ----------------------------------------------------------------------------


def test_fake_cards_pass_luhn_and_one_changed_digit_fails():
    cards = privacy.fake_card_numbers(200, seed=3)
    assert cards == privacy.fake_card_numbers(200, seed=3)
    assert all(len(c) == 16 and privacy.luhn_valid(c) for c in cards)
    for card in cards:
        changed = card[:5] + str((int(card[5]) + 1) % 10) + card[6:]
        assert not privacy.luhn_valid(changed)
    assert privacy.luhn_valid("4539578763621486")  # a published test number


def test_last4_refuses_what_is_not_a_card_number():
    assert privacy.last4("4539578763621486") == "1486"
    for bad in ("4539-5787", "123", "x" * 16, None, 4539578763621486):
        with pytest.raises(privacy.PrivacyError, match="not a card number"):
            privacy.last4(bad)


def test_luhn_refuses_what_is_not_text():
    assert not privacy.luhn_valid("4539-5787-6362-1486")
    for bad in (None, 4539578763621486):
        with pytest.raises(privacy.PrivacyError, match="a card number is text"):
            privacy.luhn_valid(bad)


# --- Anonymisation ----------------------------------------------------------------------

tables = st.lists(
    st.tuples(st.sampled_from("abc"), st.integers(0, 3), st.booleans()),
    min_size=1,
    max_size=60,
).map(lambda rows: pd.DataFrame(rows, columns=["area", "band", "churned"]))


@settings(max_examples=60, deadline=None)
@given(tables, st.integers(1, 6))
def test_suppression_reaches_k_anonymity(table, k):
    kept = privacy.suppress_small_groups(table, ["area", "band"], k)
    if len(kept):
        assert privacy.k_anonymity(kept, ["area", "band"]) >= k
        risk = privacy.reidentification_risk(kept, ["area", "band"])
        assert risk["max_risk"] <= 1 / k
        assert 0 <= risk["mean_risk"] <= risk["max_risk"]
    assert privacy.l_diversity(table, ["area", "band"], "churned") <= 2


@settings(max_examples=30, deadline=None)
@given(tables)
def test_a_coarser_grouping_is_never_less_anonymous(table):
    fine = privacy.k_anonymity(table, ["area", "band"])
    assert privacy.k_anonymity(table, ["area"]) >= fine


def test_generalisation_drops_identifiers_and_keeps_rows():
    customers = generate_customers(300, seed=1)
    general = privacy.generalise(customers, age_width=10, postcode_digits=2)
    assert len(general) == len(customers)
    assert not {"customer_id", "first_name", "last_name", "email", "birth_date"} & set(
        general.columns
    )
    assert general["postcode"].str.fullmatch(r"[0-9]{2}\*{3}").all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: privacy.generalise(t, age_width=0), "age_width"),
        (lambda t: privacy.generalise(t, postcode_digits=6), "postcode_digits"),
        (lambda t: privacy.k_anonymity(t, ["shoe_size"]), "unknown quasi"),
        (lambda t: privacy.l_diversity(t, ["plan"], "salary"), "unknown sensitive"),
        (lambda t: privacy.suppress_small_groups(t, ["plan"], 0), "k must be"),
    ],
)
def test_bad_parameters_get_clear_errors(call, message):
    with pytest.raises(privacy.PrivacyError, match=message):
        call(generate_customers(50, seed=2))


def test_minimisation_study_refuses_unknown_fields():
    with pytest.raises(privacy.PrivacyError, match="unknown fields: shoe_size"):
        privacy.minimisation_study(
            generate_customers(200), load_settings("dev"), fields=["shoe_size"]
        )


# --- The store, without a server --------------------------------------------------------


def test_the_table_follows_customer_table():
    ddl = database.customers_ddl()
    for name in CUSTOMER_TABLE:
        assert f"\n  {name} " in ddl
    assert "customer_id text NOT NULL PRIMARY KEY" in ddl


def test_connections_always_verify_the_server():
    conninfo = database.conninfo(load_settings("prod").database, "resilia_app", "pw")
    assert "sslmode=verify-full" in conninfo
    # The settings have no way to weaken it.
    with pytest.raises(ConfigurationError, match="sslmode"):
        load_settings("dev", environ={"RESILIA_DATABASE__SSLMODE": "disable"})


@pytest.mark.parametrize("bad", ["C12", "c000001", "C0000012", "C00000١", 42, None])
def test_malformed_customer_ids_get_a_clear_error(bad):
    with pytest.raises(database.DatabaseError, match="malformed customer id"):
        database.check_customer_id(bad)


def test_unknown_roles_get_a_clear_error():
    with pytest.raises(database.DatabaseError, match="unknown role 'dpo'; roles:"):
        database.conninfo(load_settings("dev").database, "dpo", "pw")


def test_database_settings_are_validated():
    with pytest.raises(ConfigurationError, match="retention_days"):
        load_settings("dev", environ={"RESILIA_DATABASE__RETENTION_DAYS": "0"})


# --- The store, on a real server --------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from coursekit.postgres import PostgresServer, PostgresUnavailable, bin_dir

    try:
        bin_dir()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    workdir = tmp_path_factory.mktemp("pg")
    with PostgresServer(workdir / "server", CONFIG_DIR) as running:
        yield running


@pytest.fixture(scope="module")
def store(server):
    with psycopg.connect(server.conninfo(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE resilia")
    passwords = {role: f"pw-{role}" for role in database.ROLES}
    admin = psycopg.connect(server.conninfo(dbname="resilia"), autocommit=True)
    database.create_store(admin, passwords)
    database.load_customers(admin, generate_customers(50, seed=5))
    settings_ = load_settings(
        "dev",
        environ={},
        overrides={
            "database": {
                "port": server.port,
                "hostaddr": "127.0.0.1",
                "sslrootcert": str(server.ca_file),
            }
        },
    )
    yield admin, settings_.database, passwords
    admin.close()


def test_the_server_version_is_the_one_of_versions_toml():
    from coursekit.postgres import PostgresUnavailable, server_version

    try:
        major = server_version().split(".")[0]
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    assert major == tool_version("postgresql")


def test_the_server_listens_on_loopback_only_and_not_as_root(server):
    import psutil

    process = psutil.Process(server.process.process.pid)
    assert process.name() == "postgres"
    if os.geteuid() == 0:
        assert process.uids().real != 0
    addresses = {
        c.laddr.ip for c in process.net_connections(kind="inet") if c.status == "LISTEN"
    }
    assert addresses == {"127.0.0.1"}


def test_plain_text_is_refused_by_the_server(server):
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(server.conninfo(sslmode="disable"))
    # "allow" and "prefer" fall back to TLS, which the server accepts.
    with psycopg.connect(server.conninfo(sslmode="allow")) as conn:
        assert conn.pgconn.ssl_in_use


def test_a_certificate_from_another_authority_is_refused(server, tmp_path):
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(server.conninfo(sslrootcert=str(other)))


def test_a_wrong_password_is_refused(server):
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(server.conninfo(password="wrong"))


def test_each_role_reads_only_what_it_is_granted(store):
    admin, settings_, passwords = store
    with database.connect(settings_, "resilia_app", passwords["resilia_app"]) as app:
        assert app.execute("SELECT count(*) FROM customers").fetchone()[0] == 50
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM vault.card_tokens")
    with database.connect(
        settings_, "resilia_analyst", passwords["resilia_analyst"]
    ) as a:
        for forbidden in ("customers", "payment_cards", "vault.identity_tokens"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                a.execute(f"SELECT * FROM {forbidden}")
        assert (
            a.execute("SELECT count(*) FROM customers_pseudonymised").fetchone()[0] == 0
        )


def test_access_and_erasure_refuse_bad_ids_and_unknown_customers(store):
    admin = store[0]
    for call in (database.export_person, database.erase_person):
        with pytest.raises(database.DatabaseError, match="malformed"):
            call(admin, "1 OR 1=1")
        with pytest.raises(database.DatabaseError, match="no customer C999999"):
            call(admin, "C999999")
    with pytest.raises(database.DatabaseError, match="at least one day"):
        database.enforce_retention(admin, 0, pd.Timestamp.now(tz="UTC"))


def test_erasure_leaves_nothing_in_the_store(store):
    admin = store[0]
    export = database.export_person(admin, "C000007")
    assert export["customers"][0]["customer_id"] == "C000007"
    deleted = database.erase_person(admin, "C000007")
    assert deleted["customers"] == 1
    assert database.traces_of(admin, ["C000007", export["customers"][0]["email"]]) == []


def test_scrub_files_removes_only_the_lines_that_mention_the_person(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("start\nscore C000001 0.3\nscore C000002 0.1\nC000001@x\nend\n")
    removed = database.scrub_files([log, tmp_path / "missing.log"], ["C000001", ""])
    assert removed == {str(log): 2}
    assert log.read_text() == "start\nscore C000002 0.1\nend\n"


def test_the_server_runs_for_an_ordinary_user():
    """Outside CI (a laptop, Onyxia) nobody is root: the same code starts the server."""
    if os.geteuid() != 0:
        pytest.skip("already running as an ordinary user (the other tests cover it)")
    tmp_path = Path(tempfile.mkdtemp(prefix="reglementation-user-"))
    tmp_path.chmod(0o777)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        import psycopg
        from coursekit.postgres import PostgresServer
        assert os.geteuid() != 0
        with PostgresServer(Path({str(tmp_path)!r}) / "pg", Path({str(CONFIG_DIR)!r})) as s:
            with psycopg.connect(s.conninfo()) as conn:
                print(conn.execute("SELECT current_user").fetchone()[0])
        """
    )
    run = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        + [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "resilia_admin"
