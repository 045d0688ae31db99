"""The MNIST autoencoder's width against its fit time, on held-out training digits.

The masked autoencoder's fit on MNIST is GEMM-bound on a CPU: the products of one update
scale with the hidden widths (:func:`revml.model.default_architecture` gives 1024-512-64
for 784 features). This fits several widths side by side in one run, everything else at its
default (``image_shape=(28, 28)``, as the MNIST command fits), on the first 55,000 training
digits, and scores revml's default loop on the same 1,000 held-out training digits (55,000
on; never test digits) under four damage patterns, on the missing pixels. Prints one line
per (width, damage) and writes JSON with the fit's seconds and updates, the device,
threads, versions and git revision.

    python benchmarks/sweep_width.py --data-dir ../shared/data/mnist
    python benchmarks/sweep_width.py --data-dir ../shared/data/mnist --widths 1024,512 512,256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from compare_suite import cpu_name
from sweep_reverse import DAMAGES

from revml import ReverseImputer, masks
from revml.datasets import load_mnist
from revml.experiments.mnist import environment
from revml.metrics import image_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument(
        "--widths", nargs="+", default=["1024,512", "768,384", "512,256"],
        help="encoder hidden widths per configuration, outermost first (bottleneck: default)",
    )  # fmt: skip
    ap.add_argument("--damage", default="rows,mcar50,center,left")
    ap.add_argument("--random-state", type=int, default=0, help="the fits' training seed")
    ap.add_argument("--out", default="benchmarks/results/sweep_width.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    train, _ = load_mnist(args.data_dir, train=True)
    train = np.asarray(train, dtype=np.float32)
    fit_part, val = train[:55_000], train[55_000 : 55_000 + args.n_val]
    damages = {kind: DAMAGES[kind](len(val)) for kind in args.damage.split(",")}
    rows = []
    for widths in args.widths:
        hidden = tuple(int(w) for w in widths.split(","))
        t = time.perf_counter()
        imp = ReverseImputer(
            random_state=args.random_state, image_shape=(28, 28), hidden=hidden
        ).fit(fit_part)
        fit_s = time.perf_counter() - t
        updates = int(imp.n_updates_)
        print(f"{widths}: fit {fit_s:.0f} s, {updates} updates", flush=True)
        for kind, miss in damages.items():
            t = time.perf_counter()
            out = imp.transform(masks.apply(val, miss))
            row = {
                "hidden": list(hidden),
                "random_state": args.random_state,
                "damage": kind,
                "fit_seconds": fit_s,
                "updates": updates,
                **image_scores(out, val, miss),
                "transform_seconds": time.perf_counter() - t,
            }
            rows.append(row)
            print(
                f"  {kind:<7} acc {row['missing_accuracy']:.4f} rmse {row['missing_rmse']:.4f} "
                f"({row['transform_seconds']:.1f} s)",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "sweep_width",
        "environment": environment(),
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "args": vars(args),
        "rows": rows,
        "total_seconds": time.perf_counter() - t0,
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
