"""What does averaging revml's imputations over training seeds buy? A probe on the
validation masks.

For each (table, mechanism) this fits ``ReverseImputer(random_state=s)`` with its defaults
for each seed ``s`` of ``--random-states`` (each fit its own network, validation cells and
trees), imputes the damaged table with each, and scores each imputation and the mean of the
first 2, 3, ... of them on the hidden cells (numeric columns averaged; a categorical
column's value is the first seed's, so only the RMSE is compared). Each average's ratio is
to the geometric mean of its members' own RMSE: what the average gains over one fit drawn
at random, at that many times the fit. Masks are the peer suite's validation ones
(``suite.VALIDATION_SEEDS``; never a scored seed).

    python benchmarks/probe_seed_average.py --random-states 0 1 2

Writes benchmarks/results/probe_seed_average.json (device, threads, versions, revision).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import suite
import torch
from comparison_table import write_result

from revml import ReverseImputer


def averaged(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The first frame with each numeric column replaced by its mean over ``frames``."""
    out = frames[0].copy()
    for c in out.columns:
        if pd.api.types.is_numeric_dtype(out[c]) and not isinstance(
            out[c].dtype, pd.CategoricalDtype
        ):
            out[c] = np.mean([f[c].to_numpy(dtype=float) for f in frames], axis=0)
    return out


def rmse(cell: suite.Damaged, filled: pd.DataFrame) -> float:
    """``filled``'s RMSE on ``cell``'s hidden numeric cells."""
    return suite.score(cell.frame, filled, cell.damaged, cell.mask, cell.ranges)["rmse"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    suite.validation_arguments(ap, "benchmarks/results/probe_seed_average.json", (0, 1, 2))
    args = ap.parse_args()
    suite.check_validation_seed(ap, args.seed)
    if len(args.random_states) < 2:
        ap.error("--random-states: at least two seeds to average")
    t0 = time.perf_counter()
    rows = []
    for cell in suite.damaged_tables(args.tables, args.mechanisms, args.seed, [0]):
        row: dict = {"table": cell.table, "mechanism": cell.mechanism, "seconds": []}
        frames = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in args.random_states:
                start = time.perf_counter()
                frames.append(ReverseImputer(random_state=s).fit_transform(cell.damaged))
                row["seconds"].append(time.perf_counter() - start)
        row["rmse"] = [rmse(cell, f) for f in frames]
        for k in range(2, len(frames) + 1):
            row[f"rmse_average_{k}"] = rmse(cell, averaged(frames[:k]))
            one = float(np.exp(np.mean(np.log(row["rmse"][:k]))))
            row[f"ratio_{k}"] = row[f"rmse_average_{k}"] / one
        rows.append(row)
        print(row, flush=True)
    summary = {}
    for k in range(2, len(args.random_states) + 1):
        ratios = np.array([r[f"ratio_{k}"] for r in rows])
        summary[str(k)] = suite.ratio_summary(ratios)
        print(f"average of {k} fits / one fit: RMSE {suite.describe_ratios(summary[str(k)])}")
    write_result(
        args.out, "probe_seed_average", args, t0,
        torch_threads=torch.get_num_threads(), rows=rows, summary=summary,
    )  # fmt: skip


if __name__ == "__main__":
    main()
