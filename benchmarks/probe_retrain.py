"""Would the autoencoder do better trained again on every observed cell once the blend's
weights are chosen? A probe on the validation masks, one network pair per cell.

``fit`` trains the autoencoder with the blend's held cells hidden
(:data:`revml.blending.VALIDATION_SHARE`), chooses the blend on them, and keeps that network.
For each (table, mechanism, training seed) this fits revml with its defaults, then trains a
second network the same way (same configuration and seed) on every observed cell, gives it
the first fit's prior (already refitted on every cell) and weights, trains the kept trees
again on its loop's fill (:meth:`revml.trees.TreeBlend.rebuilt`) and scores both on the
hidden cells. ``extra_seconds`` is the second training, its loop and the kept trees: a fit
that did this would train the kept trees once, so its extra cost is a little less. Masks
are the peer suite's validation ones (``suite.VALIDATION_SEEDS``; never a scored seed).

    python benchmarks/probe_retrain.py --random-states 0 1

Writes benchmarks/results/probe_retrain.json (device, threads, versions, revision) and
prints the RMSE ratio (retrained / default) per cell and its geometric mean.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace

import numpy as np
import suite
import torch
from comparison_table import write_result
from sweep_blend import captured_blend

from revml import ReverseImputer
from revml.blending import _loop, categorical_groups
from revml.fitting import fit_state
from revml.trees import TreeBlend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    suite.validation_arguments(ap, "benchmarks/results/probe_retrain.json", (0,))
    args = ap.parse_args()
    suite.check_validation_seed(ap, args.seed)
    t0 = time.perf_counter()
    rows = []
    with captured_blend() as captured:
        for cell in suite.damaged_tables(
            args.tables, args.mechanisms, args.seed, args.random_states
        ):
            row = {"table": cell.table, "mechanism": cell.mechanism,
                   "random_state": cell.random_state}  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = ReverseImputer(random_state=cell.random_state)
                start = time.perf_counter()
                imp.fit(cell.damaged)
                row["fit_seconds"] = time.perf_counter() - start
                row["rmse_default"] = suite.score(
                    cell.frame, imp.transform(cell.damaged), cell.damaged, cell.mask, cell.ranges
                )["rmse"]
                first, blend = imp.state_, imp.state_.blend
                if blend is None:  # no blend: nothing was held out, nothing to retrain
                    rows.append(row)
                    continue
                params, x, seed = captured["params"], captured["x"], captured["seed"]
                start = time.perf_counter()
                none_held = torch.zeros(x.shape, dtype=torch.bool)  # the blended configuration
                second = fit_state(x, params, first.encoder, None, hidden=none_held)
                second = replace(second, prior=blend.prior)
                filled = _loop(second, params, x.numpy(), seed).astype(np.float32)
                groups = categorical_groups(first.encoder)
                rebuilt = TreeBlend.rebuilt(
                    blend.weights, blend.data, filled, blend.seed, blend.prior, groups
                )
                row["extra_seconds"] = time.perf_counter() - start
                imp.state_ = replace(second, blend=rebuilt)
                row["rmse_retrained"] = suite.score(
                    cell.frame, imp.transform(cell.damaged), cell.damaged, cell.mask, cell.ranges
                )["rmse"]
            rows.append(row)
            print(row, flush=True)
    paired = [r for r in rows if "extra_seconds" in r]
    ratios = np.array([r["rmse_retrained"] / r["rmse_default"] for r in paired])
    summary = {
        **suite.ratio_summary(ratios),
        "cells_better": int((ratios < 1).sum()),
        "cells_worse": int((ratios > 1).sum()),
        "fit_seconds": float(sum(r["fit_seconds"] for r in rows)),
        "extra_seconds": float(sum(r.get("extra_seconds", 0.0) for r in rows)),
    }
    print(
        f"retrained / default RMSE: {suite.describe_ratios(summary)} "
        f"({summary['cells_better']} better, {summary['cells_worse']} worse); fits "
        f"{summary['fit_seconds']:.1f} s, extra {summary['extra_seconds']:.1f} s"
    )
    write_result(
        args.out, "probe_retrain", args, t0,
        torch_threads=torch.get_num_threads(), rows=rows, summary=summary,
    )  # fmt: skip


if __name__ == "__main__":
    main()
