"""The plain autoencoder's sweep (``masking="none"``) on held-out MNIST training digits.

This chose the defaults of revml's first version, which are still the defaults of a plain
autoencoder: the bottleneck width of :func:`revml.model.default_architecture` and the
loop below (``PLAIN``). Today's defaults (masked training, hiding dropout, restarts) were
chosen by ``benchmarks/sweep_reverse.py``. Trains on the first 59,000 training digits and
scores row-band imputation of the last 1,000 (never the test digits). Prints one line per
configuration and writes JSON.

    python benchmarks/sweep_defaults.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from revml import ReverseImputer, masks
from revml.datasets import load_mnist
from revml.experiments.mnist import environment
from revml.metrics import image_scores

AES = {
    "default": {},
    "b28": {"bottleneck": 28},
    "b64": {"bottleneck": 64},
    "b16": {"bottleneck": 16},
    "b12": {"bottleneck": 12},
    "b8": {"bottleneck": 8},
    "b28-mask25": {"mask_fraction": 0.25},
    "b28-e50": {"epochs": 50},
}
#: A plain autoencoder and revml's first default loop; every row below starts from it.
PLAIN = {
    "masking": "none",
    "n_restarts": 1,
    "clean_samples": 1,
    "n_steps": 150,
    "reverse_lr": 0.05,
    "init": "median",
    "dropout": 0.0,
    "missing_weight": 0.3,
}
SEED_LIKE = {"init": "zeros", "dropout": 0.1, "n_steps": 300, "reverse_lr": 0.02}
LOOPS = {
    "seed-like": SEED_LIKE,
    "p0": {**SEED_LIKE, "dropout": 0.0},
    "p0.2": {**SEED_LIKE, "dropout": 0.2},
    "init-mean": {**SEED_LIKE, "init": "mean"},
    "init-direct": {**SEED_LIKE, "init": "direct"},
    "lr0.05": {**SEED_LIKE, "reverse_lr": 0.05},
    "lr0.01": {**SEED_LIKE, "reverse_lr": 0.01},
    "sphere0": {**SEED_LIKE, "sphere_weight": 0.0},
    "sphere0.1": {**SEED_LIKE, "sphere_weight": 0.1},
    "150steps-lr0.04": {**SEED_LIKE, "n_steps": 150, "reverse_lr": 0.04},
    "missw0.3": {**SEED_LIKE, "missing_weight": 0.3},
    "best300": {
        "init": "zeros",
        "dropout": 0.0,
        "n_steps": 300,
        "reverse_lr": 0.05,
        "missing_weight": 0.3,
    },
    "best150-lr0.1": {
        "init": "zeros",
        "dropout": 0.0,
        "n_steps": 150,
        "reverse_lr": 0.1,
        "missing_weight": 0.3,
    },
    "defaults": {},
    "defaults-zeros": {"init": "zeros"},
    "best150-lr0.05": {
        "init": "zeros",
        "dropout": 0.0,
        "n_steps": 150,
        "reverse_lr": 0.05,
        "missing_weight": 0.3,
    },
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="benchmarks/results/sweep_defaults.json")
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--aes", default=",".join(AES))
    ap.add_argument("--loops", default=",".join(LOOPS), help="loops run on the b28 AE")
    ap.add_argument(
        "--other-loops", default="seed-like,init-direct", help="loops run on the other AEs"
    )
    args = ap.parse_args()
    x, _ = load_mnist(args.data_dir, train=True)
    train, val = x[: -args.n_val], x[-args.n_val :]
    miss = masks.row_band(len(val), seed=1)
    val_nan = masks.apply(val, miss)
    rows = []
    for ae_name in args.aes.split(","):
        t = time.perf_counter()
        imp = ReverseImputer(random_state=0, backend="reference", **{**PLAIN, **AES[ae_name]})
        imp.fit(train)
        fit_s = time.perf_counter() - t
        whole = copy.copy(imp).set_params(fill="zeros").direct_output(val_nan)
        direct = copy.copy(imp).set_params(strategy="direct").transform(val_nan)
        for name, pred in (("direct-whole", whole), ("direct", direct)):
            rows.append({"ae": ae_name, "loop": name, **image_scores(pred, val, miss)})
            print(json.dumps(rows[-1]), flush=True)
        loops = args.loops.split(",") if ae_name == "b28" else args.other_loops.split(",")
        for loop in loops:
            t = time.perf_counter()
            det = copy.copy(imp).set_params(**LOOPS[loop]).transform_details(val_nan)
            sec = time.perf_counter() - t
            for tag, pred in (("", det.X_before_clean), ("+clean", det.X)):
                rows.append(
                    {
                        "ae": ae_name,
                        "loop": loop + tag,
                        "seconds": sec,
                        "fit_seconds": fit_s,
                        **image_scores(pred, val, miss),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"environment": environment(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
