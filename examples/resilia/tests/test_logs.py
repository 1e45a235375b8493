import json
import logging

import pytest

from resilia.config import load_settings
from resilia.serving.logs import REQUEST_ID, configure_logging, mask_text


@pytest.fixture
def json_logger(tmp_path):
    settings = load_settings(
        "staging",
        environ={
            "RESILIA_LOGGING__FILE": str(tmp_path / "api.log"),
            "RESILIA_LOGGING__MAX_BYTES": "2048",
            "RESILIA_LOGGING__BACKUP_COUNT": "2",
        },
    )
    logger = configure_logging(settings, "test-service")
    yield logger, tmp_path / "api.log"
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
