import json
import logging
import re
from datetime import date

import pytest

from resilia.config import load_settings
from resilia.serving.logs import (
    REQUEST_ID,
    SENSITIVE_FIELDS,
    configure_logging,
    contains_personal_data,
    mask_text,
)


def _logger(path, **logging_settings):
    """The staging service logger writing to ``path``, with these [logging] values."""
    environ = {"RESILIA_LOGGING__FILE": str(path)} | {
        f"RESILIA_LOGGING__{key.upper()}": value
        for key, value in logging_settings.items()
    }
    return configure_logging(load_settings("staging", environ=environ), "test-service")


@pytest.fixture
def json_logger(tmp_path):
    path = tmp_path / "api.log"
    logger = _logger(path, max_bytes="2048", backup_count="2")
    yield logger, path
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_line_carries_level_service_and_request_id(json_logger):
    logger, path = json_logger
    token = REQUEST_ID.set("req-123")
    logger.warning("model reloaded", extra={"version": "1.2"})
    REQUEST_ID.reset(token)
    (line,) = _lines(path)
    assert line["level"] == "WARNING" and line["service"] == "test-service"
    assert line["request_id"] == "req-123" and line["version"] == "1.2"


def test_personal_data_is_masked(json_logger):
    logger, path = json_logger
    logger.info(
        "scored jane.doe@example.org",
        extra={
            "email": "jane.doe@example.org",
            "birth_date": "1990-01-01",
            "plan": "confort",
        },
    )
    (line,) = _lines(path)
    assert "jane.doe" not in path.read_text()
    assert line["message"] == "scored j***@example.org"
    assert (
        line["email"] == "***"
        and line["birth_date"] == "***"
        and line["plan"] == "confort"
    )


def test_level_follows_the_environment(json_logger):
    logger, path = json_logger
    logger.debug("too verbose for staging")
    assert not path.exists() or path.read_text() == ""
    prod = configure_logging(load_settings("prod", environ={}), "x")
    assert prod.level == logging.WARNING


def test_rotation_keeps_backup_count_files(json_logger):
    logger, path = json_logger
    for i in range(200):
        logger.info("line %d", i)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["api.log", "api.log.1", "api.log.2"]
    assert all(p.stat().st_size <= 2048 for p in path.parent.iterdir())


def test_mask_text_keeps_the_domain():
    assert mask_text("contact: camille.martin42@mail.example.fr.") == (
        "contact: c***@mail.example.fr."
    )


# Every personal field, at every depth, through every formatter: a test on two fields
# of a flat dict would pass with five of the seven masks removed.
PERSON = {
    "first_name": "Élodie",
    "last_name": "Durand",
    "email": "Elodie.Durand@Example.ORG",
    "birth_date": "1990-04-12",
    "postcode": "69003",
    "phone": "0612345678",
    "address": "12 rue Garibaldi",
}
SECRETS = ["Élodie", "Durand", "Elodie", "1990-04-12", "69003", "0612345678", "Garib"]


def test_every_sensitive_field_is_listed():
    assert set(PERSON) == SENSITIVE_FIELDS


def _text_logger(tmp_path):
    path = tmp_path / "text.log"
    return _logger(path, format="text"), path


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize(
    "how",
    [
        "extra_flat",
        "extra_nested",
        "extra_list",
        "extra_upper_keys",
        "message_args",
        "exception",
        "object_repr",
    ],
)
def test_no_personal_value_reaches_the_log(json_logger, tmp_path, fmt, how):
    logger, path = json_logger if fmt == "json" else _text_logger(tmp_path)
    if how == "extra_flat":
        logger.warning("customer", extra=PERSON)
    elif how == "extra_nested":
        logger.warning("customer", extra={"customer": {"identity": PERSON}})
    elif how == "extra_list":
        logger.warning("batch", extra={"customers": [PERSON, PERSON]})
    elif how == "extra_upper_keys":
        logger.warning("customer", extra={k.upper(): v for k, v in PERSON.items()})
    elif how == "message_args":
        logger.warning("refused %s (contact %s)", PERSON, PERSON["email"])
    elif how == "exception":
        try:
            raise ValueError(f"cannot score {PERSON}")
        except ValueError:
            logger.exception("scoring failed")
    else:
        logger.warning("customer", extra={"customer": Person(**PERSON)})
    written = path.read_text()
    assert written.strip(), "nothing was logged: the test would pass for nothing"
    leaked = [s for s in SECRETS if s in written]
    assert not leaked, f"{leaked} written in clear in {written!r}"
    if fmt == "json":
        json.loads(written.splitlines()[0])


class Person:
    def __init__(self, **fields):
        self.fields = fields

    def __repr__(self):
        return "Person(" + ", ".join(f"{k}={v!r}" for k, v in self.fields.items()) + ")"

    __str__ = __repr__


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Jane.Doe@Example.ORG", "J***@Example.ORG"),
        ("élodie.durand@mail.fr", "é***@mail.fr"),
        ("_x.jane@mail.fr", "_x***@mail.fr"),
        ("a@b.c", "a@b.c"),  # not an address: a one-letter top-level domain
        ("plan=confort rides=3", "plan=confort rides=3"),
        ("postcode=69003&plan=confort", "postcode=***&plan=confort"),
    ],
)
def test_mask_text_cases(text, expected):
    assert mask_text(text) == expected


def test_values_that_are_not_personal_are_kept(json_logger):
    logger, path = json_logger
    logger.warning(
        "ok", extra={"rides": 3, "fee": 19.9, "flag": True, "plan": "confort"}
    )
    (line,) = _lines(path)
    assert (line["rides"], line["fee"], line["flag"], line["plan"]) == (
        3,
        19.9,
        True,
        "confort",
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("j***@example.org", False),
        ("jane@example.org", True),
        ("appeler le 06 12 34 56 78", True),
        ("+33 6 12 34 56 78", True),
        ("06.12.34.56.78", True),
        ("0612345678", True),
        ("0012345678", False),  # no French number starts with 00
        ("id 1234567890123", False),  # too long for a phone number
        ("C000042 scored 0.42", False),
    ],
)
def test_personal_data_detector(text, found):
    assert contains_personal_data(text) is found


def test_a_masked_line_holds_no_personal_data(json_logger):
    logger, path = json_logger
    logger.warning("refused %s", PERSON, extra={"contact": PERSON["email"]})
    assert not contains_personal_data(path.read_text())


def test_line_fields_are_named_and_typed(json_logger):
    """Names and format of a line are the contract with the log collector."""
    logger, path = json_logger
    logger.warning(
        "modèle rechargé",
        extra={"day": date(2026, 1, 2), "customer": {"plan": "confort", "rides": 3}},
    )
    (line,) = _lines(path)
    assert set(line) == {
        "time",
        "level",
        "service",
        "logger",
        "message",
        "request_id",
        "day",
        "customer",
    }, "no trace ids outside a span, no None values"
    assert line["time"].endswith("+00:00") and line["logger"] == "resilia"
    assert line["day"] == "2026-01-02"
    assert line["customer"] == {"plan": "confort", "rides": 3}
    assert "modèle rechargé" in path.read_text()  # UTF-8, not \\u00e8 escapes


def test_exception_is_logged_under_its_key(json_logger):
    logger, path = json_logger
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    (line,) = _lines(path)
    assert "RuntimeError: boom" in line["exception"]


def test_text_format_is_one_readable_line(tmp_path):
    logger, path = _text_logger(tmp_path)
    token = REQUEST_ID.set("req-9")
    logger.warning("model reloaded")
    REQUEST_ID.reset(token)
    line = path.read_text().rstrip("\n")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        r"WARNING \[req-9\] resilia: model reloaded",
        line,
    ), line


def test_lines_inside_a_span_carry_its_trace_and_span_ids(json_logger):
    from opentelemetry.sdk.trace import TracerProvider

    logger, path = json_logger
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.warning("inside")
        context = span.get_span_context()
    (line,) = _lines(path)
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_configuring_twice_keeps_one_line_per_record_and_no_propagation(
    tmp_path, caplog
):
    settings = load_settings(
        "staging", environ={"RESILIA_LOGGING__FILE": str(tmp_path / "a" / "b.log")}
    )
    configure_logging(settings, "x")
    logger = configure_logging(settings, "x")  # a reload: handlers replaced
    logger.warning("once")
    assert len(logger.handlers) == 2  # stderr and the file, in a new directory
    assert (tmp_path / "a" / "b.log").read_text().count("once") == 1
    assert not caplog.records, "resilia's lines must not reach the root logger"
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
