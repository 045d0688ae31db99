"""What each imputer costs and what it gets: wall time (fit and transform apart) beside error.

Every imputer of the comparison table, in one run, on the same machine:

* tables: scikit-learn's breast cancer, wine and diabetes with 20% of the cells MCAR (mask
  seed 0, the comparison table's), RMSE on min-max scaled values over the hidden cells;
  methods mean, kNN, iterative (Bayesian ridge), the Gaussian (EM), revml's direct pass,
  revml's defaults and revml in float32 (``precision="float32"``);
* MNIST (``--mnist-train`` training digits, ``--mnist-test`` test digits with 10 of 28 rows
  hidden, the seed's damage): column mean, kNN (5 neighbours among 10,000 training
  digits, exact: :func:`revml.baselines.nearest_neighbour_fill`), revml's direct pass,
  defaults and float32; missing-pixel accuracy and RMSE.

Prints a table, writes ``benchmarks/results/cost.json`` (device, threads, versions, git
revision) and ``benchmarks/results/cost.png`` (error against total time, log scale).

    python benchmarks/cost.py --data-dir ../shared/data/mnist
    python benchmarks/cost.py --skip-mnist          # the tables only (about a minute)
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from comparison_table import TABLES, write_result

from revml import ReverseImputer, masks
from revml.baselines import make_imputer, nearest_neighbour_fill
from revml.datasets import load_mnist
from revml.evaluate import hide, make_mask
from revml.metrics import image_scores

TABLE_BASELINES = ["mean", "knn", "iterative", "gaussian"]
#: revml variants: name -> (parameters, strategy at transform)
REVML = {
    "revml direct AE": ({}, "direct"),
    "revml defaults": ({}, "reverse"),
    "revml float32": ({"precision": "float32"}, "reverse"),
}


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _scaled_rmse(pred: pd.DataFrame, truth: pd.DataFrame, hidden: np.ndarray) -> float:
    span = (truth.max() - truth.min()).replace(0, 1)
    err = ((pred - truth) / span).to_numpy()[hidden]
    return float(np.sqrt(np.mean(err**2)))


def table_rows(log) -> list[dict]:
    rows = []
    for name, loader in TABLES.items():
        truth = pd.DataFrame(loader().data)
        hidden = make_mask(truth, 0.2, "mcar", 0)
        damaged = hide(truth, hidden)

        def add(method, fit_s, transform_s, pred, truth=truth, hidden=hidden, name=name):
            row = {
                "dataset": name,
                "method": method,
                "fit_seconds": fit_s,
                "transform_seconds": transform_s,
                "rmse": _scaled_rmse(pred, truth, hidden),
            }
            rows.append(row)
            log(
                f"{name:14s} {method:18s} fit {fit_s:7.2f} s  transform {transform_s:7.2f} s  "
                f"rmse {row['rmse']:.4f}"
            )

        for method in TABLE_BASELINES:
            imp = make_imputer(method, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # IterativeImputer's convergence notices
                _, fit_s = _timed(imp.fit, damaged)
                pred, transform_s = _timed(imp.transform, damaged)
            add(method, fit_s, transform_s, pred)
        fitted: dict[str, tuple] = {}
        for method, (params, strategy) in REVML.items():
            key = repr(sorted(params.items()))
            if key not in fitted:  # the direct pass shares the defaults' fit
                fitted[key] = _timed(ReverseImputer(random_state=0, **params).fit, damaged)
            imp, fit_s = fitted[key]
            pred, transform_s = _timed(imp.set_params(strategy=strategy).transform, damaged)
            add(method, fit_s, transform_s, pred)
    return rows


def mnist_rows(args, log) -> list[dict]:
    train, _ = load_mnist(args.data_dir, train=True)
    test, _ = load_mnist(args.data_dir, train=False)
    train = np.asarray(train, dtype=np.float32)[: args.mnist_train]
    test = np.asarray(test, dtype=np.float32)[: args.mnist_test]
    miss = masks.row_band(len(test), rows=10, seed=0)
    damaged = np.where(miss, np.nan, test)
    rows = []

    def add(method, fit_s, transform_s, pred):
        s = image_scores(np.asarray(pred), test, miss)
        row = {
            "dataset": f"mnist {len(train)} train / {len(test)} test",
            "method": method,
            "fit_seconds": fit_s,
            "transform_seconds": transform_s,
            "missing_accuracy": s["missing_accuracy"],
            "rmse": s["missing_rmse"],
        }
        rows.append(row)
        log(
            f"mnist {method:18s} fit {fit_s:7.1f} s  transform {transform_s:7.1f} s  "
            f"missing acc {row['missing_accuracy']:.4f}  rmse {row['rmse']:.4f}"
        )

    means, fit_s = _timed(np.mean, train, 0)
    pred, transform_s = _timed(lambda: np.where(miss, means, test))
    add("mean", fit_s, transform_s, pred)
    pred, transform_s = _timed(nearest_neighbour_fill, train[:10_000], damaged, 5)
    add("knn (10,000 refs)", 0.0, transform_s, pred)
    fitted: dict[str, tuple] = {}
    for method, (params, strategy) in REVML.items():
        key = repr(sorted(params.items()))
        if key not in fitted:
            imp = ReverseImputer(random_state=0, image_shape=(28, 28), **params)
            fitted[key] = _timed(imp.fit, train)
        imp, fit_s = fitted[key]
        pred, transform_s = _timed(imp.set_params(strategy=strategy).transform, damaged)
        add(method, fit_s, transform_s, pred)
    return rows


def chart(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6))
    for ax, name in zip(np.atleast_1d(axes), datasets, strict=True):
        for r in (r for r in rows if r["dataset"] == name):
            total = max(r["fit_seconds"] + r["transform_seconds"], 1e-3)
            ax.scatter(total, r["rmse"], s=18)
            ax.annotate(
                r["method"],
                (total, r["rmse"]),
                fontsize=7,
                xytext=(3, 2),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("fit + transform (s)")
        ax.set_ylabel("RMSE (hidden cells)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--mnist-train", type=int, default=60_000)
    ap.add_argument("--mnist-test", type=int, default=10_000)
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/cost.json")
    ap.add_argument("--png", default="benchmarks/results/cost.png")
    args = ap.parse_args()
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    rows = table_rows(log)
    if not args.skip_mnist:
        rows += mnist_rows(args, log)
    chart(rows, args.png)
    write_result(args.out, "cost", args, t0, torch_threads=torch.get_num_threads(), rows=rows)


if __name__ == "__main__":
    main()
