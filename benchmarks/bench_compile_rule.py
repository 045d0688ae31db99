"""When does ``backend="auto"`` repay compiling the reverse step on the CPU? Fit + impute
with revml's defaults on the suite's larger tables, whole (not the suite's 1,000-row cap),
once per arm, each arm in a fresh process as a user's script runs:

* ``rule``: the defaults (:data:`revml.backends.CPU_COMPILE_MIN_MACS`);
* ``never``: the threshold at infinity (the eager reference step everywhere);
* ``always cold``: the threshold at 0 (compile every loop), with an empty inductor cache;
* ``always warm``: the same again on the cache the cold run filled.

Every loop of ``fit`` (the blend's two) and ``transform`` resolves ``"auto"`` by the
threshold, so an arm is the whole cost a user sees. The masks are the validation split's
(``--seed``, default 100), the scores the suite's (RMSE on min-max scaled numeric cells,
accuracy on categories): the compiled and eager steps compute the same maths within
float32 rounding, and the scores say whether that moved anything.

    python benchmarks/bench_compile_rule.py

Writes benchmarks/results/compile_rule.json (device, threads, versions, revision) and
prints a table of fit / transform seconds and scores per table and arm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import suite
from comparison_table import write_result

#: Arm -> the threshold it sets (None: the default) and whether its inductor cache starts
#: empty (the cold and warm arms share one cache directory, in that order).
ARMS = {
    "rule": (None, False),
    "never": (float("inf"), False),
    "always cold": (0.0, True),
    "always warm": (0.0, False),
}


def one(table: str, mechanism: str, seed: int, threshold: float | None) -> dict:
    """Fit and score revml's defaults on one cell in this process (an arm's child)."""
    from revml import ReverseImputer, backends

    if threshold is not None:
        backends.CPU_COMPILE_MIN_MACS = threshold
    cell = next(suite.damaged_tables([table], [mechanism], seed, [0]))
    imputer = ReverseImputer(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = suite.fit_and_score(imputer, cell.frame, cell.damaged, cell.mask, cell.ranges)
    result["rows"], result["columns"] = cell.damaged.shape
    result["backend"] = imputer.transform_details(cell.damaged).backend
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", nargs="+", default=["wage", "chile", "fair", "slid"])
    ap.add_argument("--mechanism", default="mcar20")
    ap.add_argument("--seed", type=int, default=suite.VALIDATION_SEEDS[0])
    ap.add_argument("--out", default="benchmarks/results/compile_rule.json")
    ap.add_argument("--child", nargs=2, metavar=("TABLE", "THRESHOLD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        table, threshold = args.child
        value = None if threshold == "default" else float(threshold)
        print(json.dumps(one(table, args.mechanism, args.seed, value)))
        return
    suite.check_validation_seed(ap, args.seed)
    t0 = time.perf_counter()
    rows = []
    print(f"{'table':10} {'shape':>10} {'arm':12} {'backend':10} fit s  transform s  rmse")
    with tempfile.TemporaryDirectory() as cache:
        for table in args.tables:
            for arm, (threshold, cold) in ARMS.items():
                env = dict(os.environ)
                if arm.startswith("always"):
                    env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(cache, table)
                    if cold and os.path.exists(env["TORCHINDUCTOR_CACHE_DIR"]):
                        raise RuntimeError(f"the cold arm's cache for {table} is not empty")
                value = "default" if threshold is None else repr(threshold)
                command = [sys.executable, __file__, "--child", table, value]
                command += ["--mechanism", args.mechanism, "--seed", str(args.seed)]
                start = time.perf_counter()
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row.update(table=table, arm=arm, process_seconds=time.perf_counter() - start)
                rows.append(row)
                shape = f"{row['rows']}x{row['columns']}"
                print(
                    f"{table:10} {shape:>10} {arm:12} {row['backend']:10} "
                    f"{row['fit_seconds']:5.2f}  {row['transform_seconds']:10.2f}  "
                    f"{row['rmse']:.5f}",
                    flush=True,
                )
    write_result(
        args.out,
        "compile_rule",
        args,
        t0,
        rows=rows,
        note="each arm a fresh process; torch's default threads; one benchmark at a time",
    )


if __name__ == "__main__":
    main()
