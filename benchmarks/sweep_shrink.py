"""How far the blend's per-feature weights lean on the weight pooled over every feature.

:func:`revml.trees.choose_weights` shrinks each feature's least-squares weight towards the
pooled one with a prior of :data:`revml.trees.SHRINK_CELLS` cells: a feature with ``n``
held cells gets ``(n * own + S * pooled) / (n + S)``. This sweeps ``S`` on the validation
masks of the peer suite (``suite.VALIDATION_SEEDS``; never a scored seed). Each (table,
mechanism, training seed) fits its autoencoder once, at the default ``S``; the blend
(:func:`revml.blending.fit_blend`: its weights, its passes and the kept trees) is then
chosen again from that same fitted state for every ``S``, and each variant imputes the
damaged table and is scored on the hidden cells. So the variants differ only in the
blend, paired on the same network.

    python benchmarks/sweep_shrink.py --shrink 20 50 150 400

Writes benchmarks/results/sweep_shrink.json (device, threads, versions, revision) and
prints the geometric mean, worst and best RMSE ratio of each ``S`` to the default's.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import suite
import torch
from comparison_table import write_result

import revml.imputer
import revml.trees
from revml import ReverseImputer
from revml.blending import fit_blend

TABLES = ["boston", "auto", "bdims", "penguins", "airquality", "diabetes", "credit", "survey",
          "college", "breast_cancer", "wine", "pima", "hitters", "pbc"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shrink", type=float, nargs="+", default=[20.0, 50.0, 150.0, 400.0])
    ap.add_argument("--tables", nargs="+", default=TABLES)
    ap.add_argument("--mechanisms", nargs="+", default=["mcar20", "mnar20"])
    ap.add_argument("--seed", type=int, default=suite.VALIDATION_SEEDS[0])
    ap.add_argument("--random-states", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default="benchmarks/results/sweep_shrink.json")
    args = ap.parse_args()
    if args.seed not in suite.VALIDATION_SEEDS:
        ap.error(f"--seed must be a validation seed {suite.VALIDATION_SEEDS}, not a scored one")
    default = revml.trees.SHRINK_CELLS
    t0 = time.perf_counter()
    captured: dict = {}

    def capture(state, params, x, held, seed):
        captured.update(state=state, params=params, x=x, held=held, seed=seed)
        return fit_blend(state, params, x, held, seed)

    revml.imputer.fit_blend = capture  # the fit's own call, its inputs kept
    rows = []
    try:
        for cell in suite.damaged_tables(
            args.tables, args.mechanisms, args.seed, args.random_states
        ):
            imp = ReverseImputer(random_state=cell.random_state)
            row = {"table": cell.table, "mechanism": cell.mechanism,
                   "random_state": cell.random_state}  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                imp.fit(cell.damaged)
                row["fit_seconds"] = time.perf_counter() - start
                for shrink in args.shrink:
                    revml.trees.SHRINK_CELLS = shrink
                    c = captured
                    imp.state_ = fit_blend(c["state"], c["params"], c["x"], c["held"], c["seed"])
                    filled = imp.transform(cell.damaged)
                    scored = suite.score(cell.frame, filled, cell.damaged, cell.mask, cell.ranges)
                    row[f"rmse_{shrink:g}"] = scored["rmse"]
                    row[f"accuracy_{shrink:g}"] = scored["accuracy"]
                revml.trees.SHRINK_CELLS = default
            rows.append(row)
            print(row, flush=True)
    finally:
        revml.imputer.fit_blend = fit_blend
        revml.trees.SHRINK_CELLS = default
    summary = {}
    for shrink in args.shrink:
        ratios = np.array([r[f"rmse_{shrink:g}"] / r[f"rmse_{default:g}"] for r in rows])
        summary[f"{shrink:g}"] = {
            "geometric_mean_ratio": float(np.exp(np.log(ratios).mean())),
            "worst_ratio": float(ratios.max()),
            "best_ratio": float(ratios.min()),
        }
        print(
            f"SHRINK_CELLS {shrink:g}: RMSE / default ({default:g}) geometric mean "
            f"{summary[f'{shrink:g}']['geometric_mean_ratio']:.4f}, worst {ratios.max():.4f}, "
            f"best {ratios.min():.4f}"
        )
    write_result(
        args.out,
        "sweep_shrink",
        args,
        t0,
        default_shrink_cells=default,
        torch_threads=torch.get_num_threads(),
        rows=rows,
        summary=summary,
    )


if __name__ == "__main__":
    main()
