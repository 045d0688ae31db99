"""Every imputer side by side: MNIST under four kinds of damage, and three tables.

Images (MNIST, imputers fitted on the 60,000 training digits, scored on test digits):

* damage: 10 of 28 pixel rows (the seed's experiment, same seeded positions as
  ``revml mnist``), 50% of pixels missing completely at random, a centred 14x14 square,
  the left half;
* methods: zero fill; column mean; scikit-learn's ``KNNImputer`` (k=5, 10,000 reference
  digits, computed exactly by :func:`revml.baselines.nearest_neighbour_fill`); an AE
  trained on complete digits, direct and with the seed's reverse loop; revml's defaults,
  direct and reverse (4 restarts averaged, with the per-value spread's correlation with
  the error); optionally the defaults with a single restart.
* metrics: missing-pixel accuracy (binarised at 0.5) and RMSE first, whole-image accuracy
  (the seed's metric) beside them.

Tables: scikit-learn's breast cancer, wine and diabetes data, 20% and 50% of cells MCAR,
RMSE over hidden cells on min-max scaled values, for mean, kNN, iterative regression, a
Gaussian fitted by EM (its conditional mean), revml's direct AE and revml's reverse
training, all with their defaults.

Prints the tables and writes ``benchmarks/results/comparison.json`` with the device,
versions and git revision. On a 2-core CPU the full run takes about an hour; ``--n-test``
and ``--n-test-other`` shrink it.

    python benchmarks/comparison_table.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from revml import ReverseImputer, masks
from revml.baselines import nearest_neighbour_fill
from revml.datasets import load_mnist
from revml.evaluate import compare
from revml.experiments.mnist import SEED_REVERSE_PARAMS, environment
from revml.metrics import image_scores

DAMAGES = ("rows", "mcar50", "center", "left")
TABLES = {"breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}
TABLE_METHODS = ["mean", "knn", "iterative", "gaussian", "direct_ae", "reverse"]


def damage_mask(kind: str, n: int, seed: int = 0) -> np.ndarray:
    if kind == "rows":
        return masks.row_band(n, rows=10, seed=seed)
    if kind == "mcar50":
        return masks.mcar((n, 784), 0.5, seed=seed)
    if kind == "center":
        return masks.block(n, position="center", seed=seed)
    if kind == "left":
        return masks.block(n, block_height=28, block_width=14, position="left", seed=seed)
    raise ValueError(f"unknown damage {kind!r}; expected one of {DAMAGES}")


def image_rows(args, log) -> tuple[list[dict], dict]:
    train, _ = load_mnist(args.data_dir, train=True)
    test, _ = load_mnist(args.data_dir, train=False)
    train = np.asarray(train, dtype=np.float32)
    test = np.asarray(test, dtype=np.float32)
    fits: dict[str, float] = {}
    t = time.perf_counter()
    defaults = ReverseImputer(random_state=0, image_shape=(28, 28)).fit(train)
    fits["revml defaults"] = time.perf_counter() - t
    log(f"fitted revml's defaults in {fits['revml defaults']:.0f} s")
    t = time.perf_counter()
    plain = ReverseImputer(random_state=0, masking="none").fit(train)
    plain.set_params(fill="zeros", **SEED_REVERSE_PARAMS)
    fits["AE on complete digits"] = time.perf_counter() - t
    log(f"fitted the plain AE in {fits['AE on complete digits']:.0f} s")
    col_mean = train.mean(0)
    refs = train[: args.n_ref]

    rows: list[dict] = []
    for kind in DAMAGES:
        n = args.n_test if kind == "rows" else args.n_test_other
        truth = test[:n]
        miss = damage_mask(kind, n)
        damaged = masks.apply(truth, miss)

        def add(method: str, pred, seconds: float, kind=kind, truth=truth, miss=miss, n=n):
            rows.append(
                {"damage": kind, "n_test": n, "method": method, "seconds": seconds}
                | image_scores(pred, truth, miss)
            )
            r = rows[-1]
            log(
                f"{kind:<7} {method:<44} missing acc {r['missing_accuracy']:.4f}  rmse "
                f"{r['missing_rmse']:.4f}  image acc {r['image_accuracy']:.4f}  {seconds:.0f} s"
            )

        def timed(fn, *args, **kwargs):
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            return out, time.perf_counter() - t

        add("zero fill", np.where(miss, 0.0, truth), 0.0)
        add("column mean", np.where(miss, col_mean, truth), 0.0)
        add(
            f"KNNImputer k=5, {len(refs)} references",
            *timed(nearest_neighbour_fill, refs, damaged, 5),
        )
        add(
            "AE on complete digits: direct",
            *timed(plain.set_params(strategy="direct").transform, damaged),
        )
        add(
            "AE on complete digits: reverse (seed's loop)",
            *timed(plain.set_params(strategy="reverse").transform, damaged),
        )
        add(
            "revml defaults: direct AE",
            *timed(defaults.set_params(strategy="direct").transform, damaged),
        )
        (out, std), sec = timed(
            defaults.set_params(strategy="reverse").transform, damaged, return_std=True
        )
        add(f"revml defaults: reverse training ({defaults.n_restarts} restarts)", out, sec)
        err, spread = np.abs(out - truth)[miss], std[miss]
        rows[-1]["mean_spread"] = float(spread.mean())
        rows[-1]["spread_error_correlation"] = float(np.corrcoef(spread, err)[0, 1])
        if args.one_restart:
            one = defaults.set_params(n_restarts=1)
            add("revml defaults, 1 restart", *timed(one.transform, damaged))
            defaults.set_params(n_restarts=ReverseImputer().n_restarts)
    return rows, fits


def table_rows(args, log) -> list[dict]:
    rows = []
    for name, loader in TABLES.items():
        frame = pd.DataFrame(loader().data)
        for fraction in (0.2, 0.5):
            t = time.perf_counter()
            scores = compare(frame, TABLE_METHODS, fraction=fraction, seed=0)
            pooled = scores[scores["column"] == "(all)"]
            for _, r in pooled.iterrows():
                rows.append(
                    {
                        "dataset": name,
                        "fraction": fraction,
                        "method": r["method"],
                        "rmse": float(r["rmse"]),
                    }
                )
            best = pooled.sort_values("rmse").iloc[0]["method"]
            log(
                f"{name:<14} {fraction:.0%}: "
                + "  ".join(f"{r['method']} {r['rmse']:.4f}" for _, r in pooled.iterrows())
                + f"  (best: {best}, {time.perf_counter() - t:.0f} s)"
            )
    return rows


def markdown(image: list[dict], tables: list[dict]) -> str:
    lines = []
    for kind in DAMAGES:
        sub = [r for r in image if r["damage"] == kind]
        if not sub:
            continue
        lines += [
            f"\n**{kind}** ({sub[0]['n_test']} test digits)\n",
            "| method | missing-pixel acc. | missing-pixel RMSE | whole-image acc. | s |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['method']} | {r['missing_accuracy']:.2%} | {r['missing_rmse']:.4f} | "
            f"{r['image_accuracy']:.2%} | {r['seconds']:.0f} |"
            for r in sub
        ]
    if tables:
        methods = list(dict.fromkeys(r["method"] for r in tables))
        lines += ["", "| table | MCAR | " + " | ".join(methods) + " |"]
        lines += ["|---|---|" + "---|" * len(methods)]
        keys = list(dict.fromkeys((r["dataset"], r["fraction"]) for r in tables))
        for name, frac in keys:
            vals = {
                r["method"]: r["rmse"]
                for r in tables
                if (r["dataset"], r["fraction"]) == (name, frac)
            }
            best = min(vals.values())
            cells = [f"**{vals[m]:.4f}**" if vals[m] == best else f"{vals[m]:.4f}" for m in methods]
            lines.append(f"| {name} | {frac:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_result(out: str, benchmark: str, args, t0: float, **fields) -> None:
    """Write a benchmark's JSON: its name, the environment (device, versions, git revision),
    its arguments, ``fields`` and the seconds since ``t0``."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": benchmark, "environment": environment(), "args": vars(args)}
    result.update(fields, total_seconds=time.perf_counter() - t0)
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path} ({result['total_seconds']:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-test", type=int, default=10_000, help="test digits, row damage")
    ap.add_argument("--n-test-other", type=int, default=2_000, help="test digits, other damage")
    ap.add_argument("--n-ref", type=int, default=10_000, help="kNN reference digits")
    ap.add_argument("--one-restart", action="store_true", help="add the defaults with n_restarts=1")
    ap.add_argument("--skip-images", action="store_true")
    ap.add_argument("--skip-tables", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/comparison.json")
    args = ap.parse_args()
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    image, fits = ([], {}) if args.skip_images else image_rows(args, log)
    tables = [] if args.skip_tables else table_rows(args, log)
    table = markdown(image, tables)
    print(table)
    write_result(
        args.out,
        "comparison_table",
        args,
        t0,
        fit_seconds=fits,
        images=image,
        tables=tables,
        markdown=table,
    )


if __name__ == "__main__":
    main()
