"""Training length that follows the data: early stopping against the fixed length.

Validation runs (mask seeds 1 and 2 of scikit-learn's breast cancer, wine and diabetes at
20% and 50% MCAR; the comparison table scores seed 0) of revml's defaults with early
stopping and of the previous fixed length (``early_stopping=False``), RMSE on min-max
scaled values averaged over the two seeds, and the wall time of each configuration's
twelve fits and transforms, measured in the same run. Writes
benchmarks/results/sweep_training.json and prints a table.

``--suite``: the same comparison on six tables of the peer suite (``suite.py``: boston,
auto, breast cancer, diabetes, bdims, penguins; 20% MCAR, its validation mask seed 100),
early stopping forced on from 200 rows against the fixed length, with times; writes
benchmarks/results/sweep_training_suite.json. This is what moved early stopping's start
to 10,000 rows (revml.fitting.EARLY_STOP_MIN_ROWS).

    python benchmarks/sweep_training.py
    python benchmarks/sweep_training.py --suite
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from comparison_table import write_result
from sweep_scaling import SEEDS, markdown, table_runs, timing_log

sys.path.insert(0, str(Path(__file__).resolve().parent))  # suite.py beside this file

#: name -> ReverseImputer parameters changed from the defaults.
CONFIGS = {
    "early stopping (default)": {},
    "fixed length (previous default)": {"early_stopping": False},
}


SUITE_TABLES = ("boston", "auto", "breast_cancer", "diabetes", "bdims", "penguins")


def suite_runs() -> list[dict]:
    """Early stopping (forced on from 200 rows) against the fixed length on suite tables."""
    import warnings

    import numpy as np
    import suite

    import revml.fitting
    from revml import ReverseImputer
    from revml.evaluate import hide

    rows = []
    for label, min_rows in (("early stopping from 200 rows", 200), ("fixed length", None)):
        for name in SUITE_TABLES:
            frame = suite.TABLES_BY_NAME[name].load()
            hidden = suite.make_mask(frame, "mcar20", 100)
            damaged = hide(frame, hidden)
            numeric = [j for j, c in enumerate(frame.columns) if frame[c].dtype != "category"]
            truth = frame.iloc[:, numeric]
            span = truth.max() - truth.min()
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if min_rows is not None:
                    revml.fitting.EARLY_STOP_MIN_ROWS = min_rows
                imp = ReverseImputer(random_state=0, early_stopping=min_rows is not None)
                out = imp.fit(damaged).transform(damaged)
            err = ((out.iloc[:, numeric] - truth) / span).to_numpy()[hidden[:, numeric]]
            rows.append(
                {
                    "config": label,
                    "table": name,
                    "rmse": float(np.sqrt(np.mean(err.astype(float) ** 2))),
                    "updates": imp.n_updates_,
                    "seconds": time.perf_counter() - t,
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--suite", action="store_true", help="the peer suite's tables instead")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.suite:
        out = args.out or "benchmarks/results/sweep_training_suite.json"
        rows = suite_runs()
        write_result(out, "sweep_training_suite", args, t0, mask_seed=100, rows=rows)
        return
    args.out = args.out or "benchmarks/results/sweep_training.json"
    seconds: dict[str, float] = {}
    log = timing_log(CONFIGS, seconds)
    import revml.fitting

    revml.fitting.EARLY_STOP_MIN_ROWS = 200  # the configuration this sweep measured

    tables = table_runs(log, CONFIGS, ["iterative", "gaussian"])
    table = markdown(tables)
    print(table)
    write_result(
        args.out,
        "sweep_training",
        args,
        t0,
        mask_seeds=list(SEEDS),
        configs=CONFIGS,
        seconds=seconds,
        torch_threads=torch.get_num_threads(),
        tables=tables,
        markdown=table,
    )


if __name__ == "__main__":
    main()
