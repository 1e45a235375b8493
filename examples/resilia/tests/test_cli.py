import csv
import json
import socket

import pytest

from resilia.cli import main


def test_train_then_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--env", "dev"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["environment"] == "dev"
    assert (tmp_path / "artifacts" / "dev" / "model.joblib").is_file()

    assert (
        main(["generate", "--rows", "20", "--seed", "3", "--output", "clients.csv"])
        == 0
    )
    capsys.readouterr()
    assert main(["predict", "--model", report["model"], "--input", "clients.csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 20
    assert all(0 <= float(r["churn_probability"]) <= 1 for r in rows)


def test_unknown_environment_is_a_clean_error(capsys):
    assert main(["settings", "--env", "production"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'production' (from argument)" in err
    assert "Traceback" not in err


def test_missing_model_is_a_clean_error(tmp_path, capsys):
    assert (
        main(["predict", "--model", str(tmp_path / "m.joblib"), "--input", "x.csv"])
        == 2
    )
    assert "no model file" in capsys.readouterr().err


def test_corrupt_model_file_is_a_clean_error(tmp_path, capsys):
    model = tmp_path / "model.joblib"
    model.write_bytes(b"not a model")
    assert main(["predict", "--model", str(model), "--input", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert str(model) in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not a readable customer CSV"),
        (b"customer_id,plan\nC000001,confort\n", "missing columns birth_date"),
        (b"customer_id,plan\nC1,a\nC2,b,c,d\n", "Expected 2 fields in line 3"),
        (b"\xff\xfe\x00garbage", "not a readable customer CSV"),
    ],
)
def test_bad_csv_is_a_clean_error(tmp_path, capsys, dev_model_path, content, expected):
    csv_path = tmp_path / "customers.csv"
    csv_path.write_bytes(content)
    code = main(["predict", "--model", str(dev_model_path), "--input", str(csv_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and str(csv_path) in err
    assert len(err.splitlines()) == 1


def test_bad_values_in_csv_are_a_clean_error(tmp_path, capsys, dev_model_path):
    csv_path = tmp_path / "customers.csv"
    assert main(["generate", "--rows", "3", "--output", str(csv_path)]) == 0
    text = csv_path.read_text().splitlines()
    header = text[0].split(",")
    row = text[1].split(",")
    row[header.index("birth_date")] = "someday"
    csv_path.write_text("\n".join([text[0], ",".join(row)]) + "\n")
    capsys.readouterr()
    assert (
        main(["predict", "--model", str(dev_model_path), "--input", str(csv_path)]) == 2
    )
    err = capsys.readouterr().err
    assert str(csv_path) in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "option", "field"),
    [
        ("serve", ["--port", "70000"], "api.port"),
        ("serve", ["--workers", "0"], "api.workers"),
        ("feature-store", ["--port", "70000"], "feature_store.url"),
    ],
)
def test_server_options_go_through_the_settings_validation(
    capsys, command, option, field
):
    assert main([command, *option]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and field in err, err


def test_a_busy_port_is_one_clear_line_and_nothing_claims_to_have_started(
    dev_model_path, capsys, monkeypatch
):
    monkeypatch.setenv("RESILIA_ARTIFACTS_DIR", str(dev_model_path.parent))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"resilia: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
