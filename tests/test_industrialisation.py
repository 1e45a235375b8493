"""Claims made by chapters/industrialisation.md, checked against the real package."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.helpers import ROOT

CHAPTER = (ROOT / "chapters" / "industrialisation.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "examples" / "resilia"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ next to the sources.
    source = shutil.copytree(
        PACKAGE,
        out / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"),
    )
    pip_wheel = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        str(out),
    ]
    subprocess.run([*pip_wheel, str(source)], check=True)
    return next(out.glob("resilia-*.whl"))


def test_wheel_ships_the_settings_and_the_command(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for env in ("dev", "staging", "prod"):
        assert f"resilia/settings/{env}.toml" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "resilia = resilia.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_installed_wheel_loads_its_own_settings(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import resilia.config as c; s = c.load_settings('prod', environ={});"
        "print(c.__file__); print(s.data.n_customers)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    ).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == "100000"


def test_layout_shown_in_the_chapter_exists():
    tree = CHAPTER.split("```text\nexamples/resilia/", 1)[1].split("```", 1)[0]
    named = re.findall(r"([\w.]+\.(?:py|toml|md))\b", tree)
    assert len(named) >= 10
    files = {p.name for p in PACKAGE.rglob("*") if p.is_file()}
    assert set(named) <= files, set(named) - files


def _duration_seconds(text):
    text = text.replace(",", ".")
    units = {"s": 1, "min": 60, "h": 3600, "jour": 86400, "jours": 86400}
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)\s*(jours|jour|min|h|s)\b", text):
        total += float(value) * units[unit]
    return total


def test_availability_table_is_correct():
    rows = re.findall(
        r"^\| (99[\d,]*) % \|[^|]*\| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", CHAPTER, re.M
    )
    assert len(rows) >= 5
    for availability, week, month, year in rows:
        down = 1 - float(availability.replace(",", ".")) / 100
        for shown, days in ((week, 7), (month, 30.44), (year, 365.25)):
            expected = down * days * 86400
            assert _duration_seconds(shown) == pytest.approx(expected, rel=0.03), (
                f"{availability} %: {shown.strip()} for {days} days, expected {expected:.0f} s"
            )


def test_top_two_percent_claim():
    """Top 2 % of scores: six in ten churn, against one in seven on average."""
    assert "parmi les 2 % d'abonnés jugés les plus à risque, six sur dix" in CHAPTER
    from resilia.config import load_settings
    from resilia.data import generate_customers
    from resilia.model import predict_churn_proba, train_from_settings

    pipeline, _ = train_from_settings(load_settings("dev", environ={}))
    population = generate_customers(100_000, seed=2026)
    scores = predict_churn_proba(pipeline, population)
    top = np.argsort(-scores)[: len(population) // 50]
    assert population["churned"].iloc[top].mean() == pytest.approx(0.6, abs=0.05)
    assert population["churned"].mean() == pytest.approx(1 / 7, abs=0.01)


def test_cli_session_shown_in_the_chapter_parses():
    from resilia.cli import build_parser

    session = CHAPTER.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in session.splitlines()]
    assert commands[0] == ["pip", "install", "-e", "examples/resilia"]
    assert (PACKAGE / "pyproject.toml").is_file()
    parser = build_parser()
    for words in commands[1:]:
        while words and "=" in words[0]:  # VAR=value before the command
            words = words[1:]
        assert words[0] == "resilia", words
        parser.parse_args(words[1:])  # SystemExit on an unknown command or option
    assert len(commands) >= 5
