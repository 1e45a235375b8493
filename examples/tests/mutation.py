"""Run mutmut on resilia's guarding modules and report the score per module.

``make mutation`` calls this script. It runs ``mutmut run`` in examples/resilia
(configuration: ``[tool.mutmut]`` in its pyproject.toml), stops it after
``--budget`` seconds at most, then reads mutmut's results (one ``.meta`` JSON file
per mutated module) and prints, per module, the mutants killed, survived and not
tested. It fails when a module scores below ``--min-score`` or when the budget ran
out before every mutant was tested: a partial score is reported, never passed off
as a full one.

    python examples/tests/mutation.py [--budget 1800] [--min-score 0.8] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

RESILIA = Path(__file__).resolve().parents[1] / "resilia"
KILLED = {1, 3, 36, 24, -24, 152, 255, 37, -9, -11}
"""mutmut's exit codes counted as a kill: test failure, timeout, crash, type error."""
SURVIVED = {0}
NO_TESTS = {5, 33}
"""No test runs this code: the mutant lives, and counts against the score."""
NOT_TESTED = {None, 34, 2}
"""Not run yet (budget spent, or interrupted): left out of the score, and reported."""


def classify(exit_code: int | None) -> str:
    if exit_code in SURVIVED:
        return "survived"
    if exit_code in NO_TESTS:
        return "no tests"
    if exit_code in KILLED:
        return "killed"
    if exit_code in NOT_TESTED:
        return "not tested"
    return "suspicious"


def scores(root: Path | None = None) -> dict[str, dict]:
    """Per module: counts by outcome, the score, and the names of survivors."""
    root = root or RESILIA
    report = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        outcome = {name: classify(code) for name, code in codes.items()}
        counts = Counter(outcome.values())
        tested = counts["killed"] + counts["survived"] + counts["no tests"]
        module = meta.relative_to(root / "mutants").as_posix().removesuffix(".meta")
        report[module] = {
            "mutants": len(codes),
            **{
                k: counts[k]
                for k in ("killed", "survived", "no tests", "not tested", "suspicious")
            },
            "score": round(counts["killed"] / tested, 3) if tested else None,
            "survivors": sorted(
                n for n, o in outcome.items() if o in {"survived", "no tests"}
            ),
        }
    return report


def run(budget_s: float, keep: bool, children: int) -> tuple[float, bool]:
    """Run mutmut; returns (seconds, finished)."""
    if not keep:
        shutil.rmtree(RESILIA / "mutants", ignore_errors=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    start = time.monotonic()
    process = subprocess.Popen(
        [str(mutmut), "run", "--max-children", str(children)],
        cwd=RESILIA,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    finished = False
    try:
        process.wait(timeout=budget_s)
        finished = process.returncode == 0
    except subprocess.TimeoutExpired:
        pass
    finally:  # budget spent, Ctrl-C or error: stop mutmut and its workers
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    return time.monotonic() - start, finished


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=900, help="seconds at most")
    parser.add_argument("--min-score", type=float, default=0.8)
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the previous run's results and keep mutants/ (mutmut browse)",
    )
    parser.add_argument("--json", type=Path, help="also write the report there")
    args = parser.parse_args(argv)

    seconds, finished = run(args.budget, args.keep, args.children)
    report = scores()
    if not report:
        print("mutmut produced no result: see `cd examples/resilia && mutmut run`")
        return 2
    width = max(len(m) for m in report)
    print(f"{'module':{width}}  mutants  killed  survived  no tests  untested  score")
    failed = []
    for module, r in report.items():
        score = "-" if r["score"] is None else f"{r['score']:.0%}"
        print(
            f"{module:{width}}  {r['mutants']:7}  {r['killed']:6}  {r['survived']:8}"
            f"  {r['no tests']:8}  {r['not tested']:8}  {score:>5}"
        )
        if r["score"] is None or r["score"] < args.min_score:
            failed.append(module)
    state = "finished" if finished else "STOPPED by the budget"
    print(f"mutmut ran {seconds:.0f} s ({state})")
    mutmut = Path(sys.executable).with_name("mutmut")
    for r in report.values():
        for name in r["survivors"]:
            shown = subprocess.run(
                [str(mutmut), "show", name],
                cwd=RESILIA,
                capture_output=True,
                text=True,
                timeout=60,
            )
            diff = [
                line for line in shown.stdout.splitlines() if line[:2] in ("- ", "+ ")
            ]
            print(f"survived: {name}\n  " + "\n  ".join(diff))
    if not args.keep:
        # mutants/ holds mutated copies of the package (exercise regions included),
        # which the book's own checks would find: removed unless asked to keep it.
        shutil.rmtree(RESILIA / "mutants", ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"seconds": round(seconds), "finished": finished, "modules": report},
                indent=1,
            )
        )
    if failed:
        print(f"below {args.min_score:.0%}: {', '.join(failed)}")
    if not finished:
        print(
            f"the budget of {args.budget:.0f} s ran out before every mutant was tested"
        )
    return 0 if finished and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
