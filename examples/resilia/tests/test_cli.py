import csv
import json

from resilia.cli import main


def test_train_then_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--env", "dev"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["environment"] == "dev"
    assert (tmp_path / "artifacts" / "dev" / "model.joblib").is_file()

    assert main(["generate", "--rows", "20", "--seed", "3", "--output", "clients.csv"]) == 0
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
    assert main(["predict", "--model", str(tmp_path / "m.joblib"), "--input", "x.csv"]) == 2
    assert "no model file" in capsys.readouterr().err
