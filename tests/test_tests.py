"""The tests chapter: mutation testing set-up and report, the load-test helpers."""

import importlib.util
import json
import re
import subprocess
import sys
import tomllib

import pytest

from tests.helpers import ROOT

RESILIA = ROOT / "examples" / "resilia"


def _load(name):
    # examples/tests holds the chapter's scripts, not a package: load them by path.
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "examples" / "tests" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


mutation = _load("mutation")
perf = _load("perf")

GUARDS = {
    "src/resilia/serving/logs.py",  # logs: personal data
    "src/resilia/schema.py",  # API validation
    "src/resilia/scoring.py",  # scoring
    "src/resilia/config.py",  # configuration
    "src/resilia/model.py",  # quality gate, risk bands
}


def _mutmut_config() -> dict:
    return tomllib.loads((RESILIA / "pyproject.toml").read_text())["tool"]["mutmut"]


def test_mutation_covers_the_modules_that_guard_data_and_requests():
    config = _mutmut_config()
    assert set(config["only_mutate"]) == GUARDS
    assert all((RESILIA / module).is_file() for module in GUARDS)


def test_every_in_process_test_file_runs_under_mutation():
    """A new test file is either run against the mutants or excluded on purpose."""
    selected = {
        p.removeprefix("tests/")
        for p in _mutmut_config()["pytest_add_cli_args_test_selection"]
    }
    starts_processes = {"test_server.py", "test_store_client.py"}
    present = {p.name for p in (RESILIA / "tests").glob("test_*.py")}
    assert selected | starts_processes == present


def test_mutation_is_its_own_target_and_not_in_make_test():
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = re.search(r"^test:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "mutation" not in test_recipe
    assert re.search(r"^mutation:.*\n\t.*examples/tests/mutation\.py", makefile, re.M)


def _meta(root, module, codes):
    path = root / "mutants" / f"{module}.meta"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes}))


def test_report_counts_untested_code_against_the_score(tmp_path):
    _meta(
        tmp_path,
        "src/resilia/a.py",
        {"a.x__mutmut_1": 1, "a.x__mutmut_2": 0, "a.y__mutmut_1": 33, "a.z__1": 36},
    )
    _meta(tmp_path, "src/resilia/b.py", {"b.x__mutmut_1": None, "b.x__mutmut_2": 1})
    report = mutation.scores(tmp_path)
    a, b = report["src/resilia/a.py"], report["src/resilia/b.py"]
    # killed: a test failure and a timeout; against: a survivor and untested code
    assert (a["killed"], a["survived"], a["no tests"], a["score"]) == (2, 1, 1, 0.5)
    assert a["survivors"] == ["a.x__mutmut_2", "a.y__mutmut_1"]
    # not run yet (budget spent): left out of the score, and counted apart
    assert (b["not tested"], b["score"]) == (1, 1.0)


def test_a_partial_run_fails_and_says_so(tmp_path, monkeypatch, capsys):
    _meta(tmp_path, "src/resilia/a.py", {"a.x__mutmut_1": 1})
    monkeypatch.setattr(mutation, "RESILIA", tmp_path)
    monkeypatch.setattr(mutation, "run", lambda *args: (12.0, False))
    assert mutation.main(["--keep"]) == 1
    out = capsys.readouterr().out
    assert "STOPPED by the budget" in out and "100%" in out


def test_a_low_score_fails(tmp_path, monkeypatch, capsys):
    _meta(tmp_path, "src/resilia/a.py", {"a.x__mutmut_1": 1, "a.x__mutmut_2": 0})
    monkeypatch.setattr(mutation, "RESILIA", tmp_path)
    monkeypatch.setattr(mutation, "run", lambda *args: (3.0, True))
    assert mutation.main(["--keep", "--min-score", "0.8"]) == 1
    assert "below 80%: src/resilia/a.py" in capsys.readouterr().out
    assert mutation.main(["--keep", "--min-score", "0.5"]) == 0


def test_mutation_help_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tests" / "mutation.py"), "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "--budget" in result.stdout


@pytest.mark.parametrize(
    ("row", "reasons"),
    [
        ({"failures": 0, "requests": 1000, "p99 ms": 20, "offered req/s": 200,
          "req/s": 199}, []),
        ({"failures": 6, "requests": 1000, "p99 ms": 20, "offered req/s": 200,
          "req/s": 199}, ["erreurs"]),
        ({"failures": 0, "requests": 1000, "p99 ms": 51, "offered req/s": 200,
          "req/s": 199}, ["p99"]),
        ({"failures": 0, "requests": 1000, "p99 ms": 20, "offered req/s": 200,
          "req/s": 170}, ["débit"]),
    ],
)  # fmt: skip
def test_slo_breaks_are_named(row, reasons):
    found = perf.breaks_slo(row)
    assert [r.split()[0] for r in found] == reasons


def test_memory_drift_finds_a_leak_and_not_noise():
    leak = [(s, 100 + s / 60 * 3.0) for s in range(120)]
    assert perf.memory_drift(leak)["slope"] == pytest.approx(3.0)
    noise = [(s, 100.0 + (s % 3) * 0.2) for s in range(120)]
    drift = perf.memory_drift(noise)
    assert drift["low"] <= 0 <= drift["high"]
    with pytest.raises(ValueError, match="at least 3"):
        perf.memory_drift([(0, 1.0), (1, 1.0)])


def test_the_load_test_targets_loopback_only():
    # perf.py starts and loads the service through the observability benchmark.
    bench = ROOT / "examples" / "observabilite" / "resilia_observabilite" / "bench.py"
    assert "bench.serve(" in (ROOT / "examples" / "tests" / "perf.py").read_text()
    for path in (ROOT / "examples" / "tests" / "perf.py", bench):
        assert set(re.findall(r"://([^:/]+)", path.read_text())) <= {"127.0.0.1"}
    assert re.findall(r"http://([0-9.]+):", bench.read_text()) == ["127.0.0.1"] * 2
