"""Training length that follows the data: early stopping against the fixed length.

Validation runs (mask seeds 1 and 2 of scikit-learn's breast cancer, wine and diabetes at
20% and 50% MCAR; the comparison table scores seed 0) of revml's defaults with early
stopping and of the previous fixed length (``early_stopping=False``), RMSE on min-max
scaled values averaged over the two seeds, and the wall time of each configuration's
twelve fits and transforms, measured in the same run. Writes
benchmarks/results/sweep_training.json and prints a table.

    python benchmarks/sweep_training.py
"""

from __future__ import annotations

import argparse
import time

import torch
from comparison_table import write_result
from sweep_scaling import SEEDS, markdown, table_runs, timing_log

#: name -> ReverseImputer parameters changed from the defaults.
CONFIGS = {
    "early stopping (default)": {},
    "fixed length (previous default)": {"early_stopping": False},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="benchmarks/results/sweep_training.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    log = timing_log(CONFIGS, seconds)

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
