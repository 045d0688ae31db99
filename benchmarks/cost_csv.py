"""What a user waits for: `revml impute messy.csv -o filled.csv --seed 0`, end to end.

Writes the messy 300-row survey table of :func:`revml.datasets.messy_table` (the table of
tests/test_csv_defaults.py: integers, decimals, two text columns, six spellings of
"missing", -999 in the incomes) to a temporary folder and runs the command a user would
type, with default parameters (no --epochs), as a child process: the time measured
(``time.perf_counter`` around the child) includes starting Python, importing torch,
reading, training, imputing and writing. The ``revml`` script beside this Python is run
when there is one, ``python -m revml.cli`` otherwise.

    python benchmarks/cost_csv.py                 # one run
    python benchmarks/cost_csv.py --repeats 3     # the median of three
    python benchmarks/cost_csv.py --dry-run       # print the command, run nothing

Threads are whatever the environment gives the child (``OMP_NUM_THREADS`` is recorded
with ``os.cpu_count()``); set it to compare machines fairly. The result JSON (times, the
number of training updates the child logged, environment) goes to
benchmarks/results/cost_csv.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
RESULT = ROOT / "benchmarks" / "results" / "cost_csv.json"


@dataclass(frozen=True)
class Case:
    rows: int = 300
    seed: int = 0  # of the table; the command's own --seed is 0 as well
    repeats: int = 1


@dataclass
class Result:
    case: dict
    command: list[str]
    seconds: list[float]
    median_seconds: float
    n_updates: int | None  # from the child's "trained the autoencoder: N updates" line
    output_rows: int
    output_missing: int
    environment: dict


def revml_command() -> list[str]:
    """The `revml` console script of this Python's environment, or ``python -m revml.cli``."""
    script = Path(sys.executable).with_name("revml")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "revml.cli"]


def environment() -> dict:
    """The shared stamp (device, torch/triton versions, git revision, timestamp), plus
    what decides the child's threads."""
    from revml.experiments.mnist import environment as stamp

    env = stamp()
    env["cpu_count"] = os.cpu_count()
    env["thread_env"] = {
        k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS")
    }
    return env


def run(case: Case, *, dry_run: bool = False) -> Result | None:
    from revml.datasets import messy_table

    with tempfile.TemporaryDirectory(prefix="revml-cost-csv-") as tmp:
        data, out = Path(tmp) / "messy.csv", Path(tmp) / "filled.csv"
        argv = [*revml_command(), "impute", "messy.csv", "-o", "filled.csv", "--seed", "0"]
        if dry_run:
            print(f"would run, in a temporary folder holding messy.csv: {' '.join(argv)}")
            return None
        data.write_text(messy_table(case.rows, seed=case.seed))
        seconds, stderr = [], ""
        for _ in range(case.repeats):
            out.unlink(missing_ok=True)
            t0 = time.perf_counter()
            child = subprocess.run(argv, cwd=tmp, capture_output=True, text=True)
            seconds.append(time.perf_counter() - t0)
            if child.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed:\n{child.stderr[-4000:]}")
            stderr = child.stderr
        import pandas as pd

        filled = pd.read_csv(out)
        found = re.search(r"trained the autoencoder: (\d+) updates", stderr)
        return Result(
            case=asdict(case),
            command=argv,
            seconds=seconds,
            median_seconds=statistics.median(seconds),
            n_updates=int(found.group(1)) if found else None,
            output_rows=len(filled),
            output_missing=int(filled.isna().to_numpy().sum()),
            environment=environment(),
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=Case.rows, help="rows of the messy table")
    ap.add_argument("--repeats", type=int, default=Case.repeats, help="runs; the median counts")
    ap.add_argument("--out", type=Path, default=RESULT, help="result JSON (default: %(default)s)")
    ap.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.rows < 1:
        ap.error("--rows and --repeats must be >= 1")
    result = run(Case(rows=args.rows, repeats=args.repeats), dry_run=args.dry_run)
    if result is None:
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")  # a kill never leaves half a file
    tmp.write_text(json.dumps(asdict(result), indent=1) + "\n")
    tmp.replace(args.out)
    updates = f", {result.n_updates} training updates" if result.n_updates is not None else ""
    runs = ", ".join(f"{s:.2f}" for s in result.seconds)
    print(
        f"revml impute messy.csv ({args.rows} rows): {result.median_seconds:.2f} s end to end "
        f"(runs: {runs} s){updates}; OMP_NUM_THREADS="
        f"{result.environment['thread_env']['OMP_NUM_THREADS']}, {os.cpu_count()} CPUs; "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
