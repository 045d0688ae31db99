"""One of the tree blend's constants swept on the validation masks, one network per cell.

The blend (:func:`revml.blending.fit_blend`) reads its constants when it runs:

* ``SHRINK_CELLS`` (:mod:`revml.trees`): the prior, in cells, with which each feature's
  least-squares weight leans on the weight pooled over every feature (a feature with ``n``
  held cells gets ``(n * own + S * pooled) / (n + S)``);
* ``MIN_PASS_GAIN`` (:mod:`revml.blending`): the share by which a pass must lower the held
  cells' error to be kept;
* ``LATE_PASS_GAIN`` (:mod:`revml.blending`): the gain of the pass before that a pass after
  the second needs to be tried;
* ``N_TREES`` (:mod:`revml.trees`): the trees of each feature's forest, trial and kept;
* ``MAX_TREE_ROWS`` (:mod:`revml.trees`): the rows a feature's trees learn from at most
  (a seeded subset beyond);
* ``MIN_TREES`` (:mod:`revml.trees`): the trees a forest keeps however many rows it learns
  from (:func:`revml.trees.forest_size`);
* ``N_PASSES`` (:mod:`revml.blending`, which reads its copy of :data:`revml.trees.N_PASSES`):
  the passes of trees at most;
* ``GAIN_FOLDS`` (:mod:`revml.blending`): the folds in which a pass's gain is scored out of
  sample (1: on the cells its weights were fitted to);
* ``MIN_GAUSSIAN_GAIN`` (:mod:`revml.blending`): the share by which the Gaussian step must
  lower the held cells' error to be taken.

Each (table, mechanism, training seed) fits its autoencoder once, with the constant at its
default; the blend (its weights, its passes and the kept trees) is then chosen again from
that same fitted state for every value, and each variant imputes the damaged table and is
scored on the hidden cells. So the variants differ only in the blend, paired on the same
network, and each variant's blend time is recorded beside its error. Masks are the peer
suite's validation ones (``suite.VALIDATION_SEEDS``; never a scored seed).

    python benchmarks/sweep_blend.py --constant SHRINK_CELLS --values 20 50 150 400
    python benchmarks/sweep_blend.py --constant LATE_PASS_GAIN --values 0.005 0.01 0.02
    python benchmarks/sweep_blend.py --constant N_TREES --values 20 50

Writes benchmarks/results/sweep_blend.json (device, threads, versions, revision) and prints
each value's RMSE ratio to the default's (geometric mean, worst, best) and blend seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from collections.abc import Iterator

import numpy as np
import suite
import torch
from comparison_table import write_result

import revml.blending
import revml.imputer
import revml.trees
from revml import ReverseImputer
from revml.blending import fit_blend

#: constant -> the module that holds it (and that the blend reads it from)
CONSTANTS = {
    "SHRINK_CELLS": revml.trees,
    "MIN_PASS_GAIN": revml.blending,
    "LATE_PASS_GAIN": revml.blending,
    "N_TREES": revml.trees,
    "MAX_TREE_ROWS": revml.trees,
    "MIN_TREES": revml.trees,
    "N_PASSES": revml.blending,
    "GAIN_FOLDS": revml.blending,
    "MIN_GAUSSIAN_GAIN": revml.blending,
}
#: the constants that count something: their values are whole numbers
COUNTS = {"N_TREES", "MAX_TREE_ROWS", "MIN_TREES", "N_PASSES", "GAIN_FOLDS"}


@contextlib.contextmanager
def captured_blend() -> Iterator[dict]:
    """While open, every fit's own call of :func:`~revml.blending.fit_blend` runs as it
    would and leaves its inputs (``state``, ``params``, ``x``, ``held``, ``seed``) in the
    dict this yields, so a sweep can choose the blend again from the same fitted state."""
    captured: dict = {}

    def capture(state, params, x, held, seed):
        captured.update(state=state, params=params, x=x, held=held, seed=seed)
        return fit_blend(state, params, x, held, seed)

    revml.imputer.fit_blend = capture
    try:
        yield captured
    finally:
        revml.imputer.fit_blend = fit_blend


def blend_row(cell: suite.Damaged, captured: dict, module, constant: str, values) -> dict:
    """Fit revml's defaults on ``cell`` (the fit's blend inputs land in ``captured``, see
    :func:`captured_blend`), then choose the blend again with ``constant`` (an attribute of
    ``module``) at each of ``values``: each variant's blend seconds, RMSE and accuracy."""
    imp = ReverseImputer(random_state=cell.random_state)
    row = {"table": cell.table, "mechanism": cell.mechanism, "random_state": cell.random_state}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        imp.fit(cell.damaged)
        row["fit_seconds"] = time.perf_counter() - start
        c = captured
        for value in values:
            setattr(module, constant, value)
            start = time.perf_counter()
            imp.state_ = fit_blend(c["state"], c["params"], c["x"], c["held"], c["seed"])
            row[f"blend_seconds_{value:g}"] = time.perf_counter() - start
            filled = imp.transform(cell.damaged)
            scored = suite.score(cell.frame, filled, cell.damaged, cell.mask, cell.ranges)
            row[f"rmse_{value:g}"] = scored["rmse"]
            row[f"accuracy_{value:g}"] = scored["accuracy"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--constant", choices=sorted(CONSTANTS), required=True)
    ap.add_argument("--values", type=float, nargs="+", required=True)
    suite.validation_arguments(ap, "benchmarks/results/sweep_blend.json")
    args = ap.parse_args()
    suite.check_validation_seed(ap, args.seed)
    module = CONSTANTS[args.constant]
    kind = int if args.constant in COUNTS else float
    if kind is int and any(v != int(v) or v < 1 for v in args.values):
        ap.error(f"{args.constant} counts: --values must be whole numbers from 1")
    default = kind(getattr(module, args.constant))
    values = sorted({kind(v) for v in args.values} | {default})
    t0 = time.perf_counter()
    rows = []
    with captured_blend() as captured:
        for cell in suite.damaged_tables(
            args.tables, args.mechanisms, args.seed, args.random_states
        ):
            try:
                rows.append(blend_row(cell, captured, module, args.constant, values))
            finally:
                setattr(module, args.constant, default)
            print(rows[-1], flush=True)
    summary = {}
    for value in values:
        ratios = np.array([r[f"rmse_{value:g}"] / r[f"rmse_{default:g}"] for r in rows])
        entry = {
            **suite.ratio_summary(ratios),
            "blend_seconds": float(sum(r[f"blend_seconds_{value:g}"] for r in rows)),
        }
        summary[f"{value:g}"] = entry
        print(
            f"{args.constant} {value:g}: RMSE / default ({default:g}) "
            f"{suite.describe_ratios(entry)}; blend {entry['blend_seconds']:.1f} s in all"
        )
    write_result(
        args.out,
        "sweep_blend",
        args,
        t0,
        constant=args.constant,
        default=default,
        torch_threads=torch.get_num_threads(),
        rows=rows,
        summary=summary,
    )


if __name__ == "__main__":
    main()
