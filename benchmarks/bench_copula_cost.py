"""What the blend's copula step (:data:`revml.blending.COPULA`) costs on whole tables: fit +
impute with revml's defaults on the suite's larger tables (not the suite's 1,000-row cap),
with the step and without it, each arm in a fresh process, the two arms taking turns first
table by table (a shared CPU's speed drifts over minutes).

The masks are the validation split's (``--seed``, default 100), the scores the suite's (RMSE
on min-max scaled numeric cells, accuracy on categories).

    python benchmarks/bench_copula_cost.py

Writes benchmarks/results/copula_cost.json (device, threads, versions, revision) and prints
fit / transform seconds and scores per table and arm.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import suite
from comparison_table import write_result


def one(table: str, mechanism: str, seed: int, copula: bool) -> dict:
    """Fit and score revml's defaults on one cell in this process (an arm's child)."""
    from revml import ReverseImputer, blending

    blending.COPULA = copula
    cell = next(suite.damaged_tables([table], [mechanism], seed, [0]))
    imputer = ReverseImputer(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = suite.fit_and_score(imputer, cell.frame, cell.damaged, cell.mask, cell.ranges)
    result["rows"], result["columns"] = cell.damaged.shape
    result["copula_features"] = int(imputer.fitted_copula_weights_.astype(bool).sum())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", nargs="+", default=["wage", "fair", "diamonds", "weather"])
    ap.add_argument("--mechanism", default="mcar20")
    ap.add_argument("--seed", type=int, default=suite.VALIDATION_SEEDS[0])
    ap.add_argument("--out", default="benchmarks/results/copula_cost.json")
    ap.add_argument("--child", nargs=2, metavar=("TABLE", "COPULA"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        table, copula = args.child
        print(json.dumps(one(table, args.mechanism, args.seed, copula == "on")))
        return
    suite.check_validation_seed(ap, args.seed)
    t0 = time.perf_counter()
    rows = []
    print(f"{'table':10} {'shape':>11} {'copula':6} fit s  transform s  rmse     features")
    for i, table in enumerate(args.tables):
        for arm in ("on", "off") if i % 2 == 0 else ("off", "on"):
            command = [sys.executable, __file__, "--child", table, arm]
            command += ["--mechanism", args.mechanism, "--seed", str(args.seed)]
            start = time.perf_counter()
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row.update(table=table, copula=arm, process_seconds=time.perf_counter() - start)
            rows.append(row)
            shape = f"{row['rows']}x{row['columns']}"
            print(
                f"{table:10} {shape:>11} {arm:6} {row['fit_seconds']:5.2f}  "
                f"{row['transform_seconds']:10.2f}  {row['rmse']:.5f}  {row['copula_features']}",
                flush=True,
            )
    write_result(
        args.out,
        "copula_cost",
        args,
        t0,
        rows=rows,
        note="each arm a fresh process; torch's default threads; one benchmark at a time",
    )


if __name__ == "__main__":
    main()
