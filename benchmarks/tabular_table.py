"""Defaults on tables: revml against the classical imputers on scikit-learn's bundled data.

Breast cancer (30 columns), wine (13) and diabetes (10), with 20% and 50% of the cells
hidden completely at random; RMSE on min-max scaled values over the hidden cells, every
method with its defaults. Prints a table and writes benchmarks/results/tabular_table.json.

    python benchmarks/tabular_table.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from revml.evaluate import compare
from revml.experiments.mnist import environment

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}
METHODS = ["mean", "median", "iterative", "knn", "agglomerative", "direct_ae", "reverse"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fractions", default="0.2,0.5")
    ap.add_argument("--out", default="benchmarks/results/tabular_table.json")
    args = ap.parse_args()
    rows = []
    for name, loader in DATASETS.items():
        frame = pd.DataFrame(loader().data)
        for fraction in (float(f) for f in args.fractions.split(",")):
            scores = compare(frame, METHODS, fraction=fraction, seed=0)
            pooled = scores[scores["column"] == "(all)"]
            for _, r in pooled.iterrows():
                rows.append(
                    {
                        "dataset": name,
                        "fraction": fraction,
                        "method": r["method"],
                        "rmse": float(r["rmse"]),
                        "mae": float(r["mae"]),
                        "seconds": float(r["seconds"]),
                    }
                )
            best = pooled.sort_values("rmse").iloc[0]["method"]
            line = "  ".join(f"{r['method']} {r['rmse']:.4f}" for _, r in pooled.iterrows())
            print(f"{name:<14}{fraction:>4.0%}  {line}   best: {best}", flush=True)
            # Written after every case, so a long run that is stopped keeps what it measured.
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(
                json.dumps({"environment": environment(), "rows": rows}, indent=2)
            )
    table = pd.DataFrame(rows).pivot_table(
        index=["dataset", "fraction"], columns="method", values="rmse"
    )[METHODS]
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
