"""How a masked autoencoder's inputs are scaled: validation runs behind ``scaling="auto"``.

Masked training and hiding dropout put 0 in every hidden entry. Under min-max scaling 0 is
each column's minimum, a real and extreme value; under ``scaling="center"`` it is the
column mean. This script measures the difference on data the comparison table never
scores:

* tables: scikit-learn's breast cancer, wine and diabetes sets at 20% and 50% MCAR, with
  mask seeds 1 and 2 (the comparison table uses seed 0), RMSE on min-max scaled values
  averaged over the two seeds; one row per configuration of ``ReverseImputer`` (defaults
  plus the named changes), with mean, kNN and iterative regression for reference;
* images (``--mnist``): rows of MNIST without ``image_shape``, so ``"auto"`` centres them,
  against ``scaling="none"``; autoencoders fitted on the first 15,000 training digits for
  60 epochs (a shortened fit), 1,000 held-out training digits (the last ones) scored on
  the missing pixels, 10 of 28 rows missing and a centred 14x14 square.

Writes benchmarks/results/sweep_scaling.json and prints a table.

    python benchmarks/sweep_scaling.py --mnist --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from comparison_table import TABLES, write_result  # the same tables, the same JSON

from revml import ReverseImputer, masks
from revml.datasets import load_mnist
from revml.evaluate import compare
from revml.metrics import image_scores

SEEDS = (1, 2)
BASELINES = ["mean", "knn", "iterative"]
#: name -> ReverseImputer parameters changed from the defaults.
CONFIGS = {
    "minmax (hidden = column minimum)": {"scaling": "minmax"},
    "center (default)": {},
    "center, dropout 0.2": {"dropout": 0.2},
    "center, 8 restarts, 16 clean samples": {"n_restarts": 8, "clean_samples": 16},
    "center, bottleneck 32": {"bottleneck": 32},
}


def table_runs(log, configs: dict = CONFIGS, baselines: list[str] = BASELINES) -> list[dict]:
    """Validation RMSE (mask seeds 1 and 2 averaged) of each baseline and each
    ``ReverseImputer`` configuration on the six table cases; one row per pair."""
    rows = []
    cases = [(name, f) for name in TABLES for f in (0.2, 0.5)]

    def mean_rmse(name, fraction, methods, ae_params=None) -> dict[str, float]:
        frame = pd.DataFrame(TABLES[name]().data)
        scores: dict[str, list[float]] = {}
        for seed in SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # IterativeImputer's convergence notices
                table = compare(frame, methods, fraction=fraction, seed=seed, ae_params=ae_params)
            pooled = table[table["column"] == "(all)"].set_index("method")["rmse"]
            for method, value in pooled.items():
                scores.setdefault(method, []).append(float(value))
        return {m: float(np.mean(v)) for m, v in scores.items()}

    for name, fraction in cases:
        for method, rmse in mean_rmse(name, fraction, baselines).items():
            rows.append({"config": method, "dataset": name, "fraction": fraction, "rmse": rmse})
    for label, params in configs.items():
        t = time.perf_counter()
        for name, fraction in cases:
            rmse = mean_rmse(name, fraction, ["reverse"], params)["reverse"]
            rows.append({"config": label, "dataset": name, "fraction": fraction, "rmse": rmse})
        log(f"{label}: {time.perf_counter() - t:.0f} s")
    return rows


def validation_digits(data_dir) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The shortened MNIST validation: 15,000 training digits to fit, the last 1,000
    training digits (never the test set) to score, and their rows and centred-square
    damage masks."""
    train, _ = load_mnist(data_dir, train=True)
    train = np.asarray(train, dtype=np.float32).reshape(len(train), -1)
    fit, val = train[:15_000], train[-1_000:]
    damages = {
        "rows": masks.row_band(len(val), rows=10, seed=5),
        "center": masks.block(len(val), position="center", seed=5),
    }
    return fit, val, damages


def timing_log(configs: dict, seconds: dict[str, float]):
    """A ``log`` for :func:`table_runs` that also keeps each configuration's seconds."""

    def log(msg: str) -> None:
        print(msg, flush=True)
        label, _, rest = msg.rpartition(": ")
        if rest.endswith(" s") and label in configs:
            seconds[label] = float(rest[:-2])

    return log


def mnist_runs(data_dir, log) -> list[dict]:
    fit, val, damages = validation_digits(data_dir)
    rows = []
    for scaling in ("none", "auto"):
        t = time.perf_counter()
        imp = ReverseImputer(scaling=scaling, epochs=60, n_restarts=1, random_state=0)
        imp.fit(fit)
        for damage, miss in damages.items():
            for strategy in ("direct", "reverse"):
                pred = np.asarray(
                    imp.set_params(strategy=strategy).transform(np.where(miss, np.nan, val))
                )
                s = image_scores(pred, val, miss)
                rows.append(
                    {
                        "scaling": "center (auto)" if scaling == "auto" else scaling,
                        "damage": damage,
                        "strategy": strategy,
                        "missing_accuracy": s["missing_accuracy"],
                        "missing_rmse": s["missing_rmse"],
                    }
                )
        log(f"mnist scaling={scaling}: {time.perf_counter() - t:.0f} s")
    return rows


def markdown(tables: list[dict], images: list[dict] = ()) -> str:
    cases = list(dict.fromkeys((r["dataset"], r["fraction"]) for r in tables))
    head = "| configuration | " + " | ".join(f"{d} {f:.0%}" for d, f in cases) + " |"
    lines = [head, "|---|" + "---|" * len(cases)]
    for config in dict.fromkeys(r["config"] for r in tables):
        got = {(r["dataset"], r["fraction"]): r["rmse"] for r in tables if r["config"] == config}
        lines.append(f"| {config} | " + " | ".join(f"{got[c]:.4f}" for c in cases) + " |")
    if images:
        lines += ["", "| MNIST scaling | damage | strategy | missing acc | missing RMSE |"]
        lines.append("|---|---|---|---|---|")
        for r in images:
            lines.append(
                f"| {r['scaling']} | {r['damage']} | {r['strategy']} | "
                f"{r['missing_accuracy']:.2%} | {r['missing_rmse']:.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", action="store_true", help="also the MNIST check (~10 min)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="benchmarks/results/sweep_scaling.json")
    args = ap.parse_args()
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    tables = table_runs(log)
    images = mnist_runs(args.data_dir, log) if args.mnist else []
    table = markdown(tables, images)
    print(table)
    write_result(
        args.out,
        "sweep_scaling",
        args,
        t0,
        mask_seeds=list(SEEDS),
        tables=tables,
        images=images,
        markdown=table,
    )


if __name__ == "__main__":
    main()
