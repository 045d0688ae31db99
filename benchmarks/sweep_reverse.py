"""How the defaults of ReverseImputer were chosen: ablations on held-out training digits.

Never on test digits. The autoencoders are fitted on the first 55,000 MNIST training
digits; every configuration imputes the same 1,000 held-out training digits (55,000 on)
with 10 of 28 rows missing (and, with ``--damage``, other patterns), scored on the
missing pixels. One row per configuration, each a single change from the defaults, so a
row says what that part of the method is worth:

* the autoencoder: trained with masking (default) or plain (the seed's), with or without
  self-conditioning, with or without the image shape (``--fit-ablations``: two more
  fits of ~10 minutes each on a 2-core CPU);
* the loop: its start, input dropout and its form (hiding vs rescaling), the weight of the
  missing entries, learning rate and steps, the averaged clean pass, the restarts.

Writes benchmarks/results/sweep_reverse.json and prints a table.

    python benchmarks/sweep_reverse.py --data-dir ../shared/data/mnist
    python benchmarks/sweep_reverse.py --data-dir ../shared/data/mnist \
        --damage rows,mcar50,center,left --only defaults "2 restarts" "3 restarts"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from revml import ReverseImputer, masks
from revml.datasets import load_mnist
from revml.experiments.mnist import SEED_REVERSE_PARAMS, environment
from revml.metrics import image_scores

DAMAGES = {
    "rows": lambda n: masks.row_band(n, rows=10, seed=123),
    "mcar50": lambda n: masks.mcar((n, 784), 0.5, seed=123),
    "center": lambda n: masks.block(n, position="center", seed=123),
    "left": lambda n: masks.block(n, block_height=28, block_width=14, position="left", seed=123),
}

#: Parameters that act at transform time only (a cached fit takes today's values).
TRANSFORM_PARAMS = (
    "strategy",
    "n_steps",
    "reverse_lr",
    "init",
    "dropout",
    "dropout_mode",
    "missing_weight",
    "sphere_weight",
    "clean_pass",
    "clean_samples",
    "n_restarts",
    "restart_noise",
    "combine",
    "fill",
    "backend",
)
_DEFAULTS = ReverseImputer()

#: Transform-time variants of the defaults: (label, parameters changed).
LOOP_VARIANTS = [
    ("defaults", {}),
    ("direct pass only (strategy='direct')", {"strategy": "direct"}),
    ("1 restart", {"n_restarts": 1}),
    ("2 restarts", {"n_restarts": 2}),
    ("3 restarts", {"n_restarts": 3}),
    ("2 restarts, 16 clean samples", {"n_restarts": 2, "clean_samples": 16}),
    ("1 restart, 16 clean samples", {"n_restarts": 1, "clean_samples": 16}),
    ("2 restarts, 50 steps", {"n_restarts": 2, "n_steps": 50}),
    ("8 restarts", {"n_restarts": 8}),
    ("4 restarts, lowest loss kept (not averaged)", {"combine": "lowest_loss"}),
    ("restart noise 0.2", {"restart_noise": 0.2}),
    ("no input dropout", {"dropout": 0.0, "clean_samples": 1}),
    ("inverted (rescaling) dropout", {"dropout_mode": "scale"}),
    ("dropout 0.3", {"dropout": 0.3}),
    ("dropout 0.6", {"dropout": 0.6}),
    ("clean pass without averaging", {"clean_samples": 1}),
    ("no clean pass", {"clean_pass": False}),
    ("missing_weight 1", {"missing_weight": 1.0}),
    ("missing_weight 3", {"missing_weight": 3.0}),
    ("start at zeros", {"init": "zeros"}),
    ("lr 0.02", {"reverse_lr": 0.02}),
    ("150 steps", {"n_steps": 150}),
    ("sphere term 0.01", {"sphere_weight": 0.01}),
    ("missing_weight 1 and sphere term 0.01", {"missing_weight": 1.0, "sphere_weight": 0.01}),
]

#: The plain autoencoder's loops: the seed's, and revml's previous defaults.
PLAIN_VARIANTS = [
    ("plain AE: direct pass", {"strategy": "direct"}),
    ("plain AE: seed's loop", {**SEED_REVERSE_PARAMS, "fill": "zeros"}),
    (
        "plain AE: earlier default loop (median start, missing_weight 0.3)",
        {
            "init": "median",
            "n_steps": 150,
            "reverse_lr": 0.05,
            "dropout": 0.0,
            "missing_weight": 0.3,
            "clean_samples": 1,
            "n_restarts": 1,
        },
    ),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--damage", default="rows", help=f"comma list of {list(DAMAGES)}")
    ap.add_argument("--fit-ablations", action="store_true")
    ap.add_argument("--cache", default="runs/sweep_reverse", help="fitted imputers go here")
    ap.add_argument("--out", default="benchmarks/results/sweep_reverse.json")
    ap.add_argument(
        "--only", nargs="+", default=None,
        help="variant labels to run (default: all); skips the plain AE",
    )  # fmt: skip
    args = ap.parse_args()
    only = None if args.only is None else set(args.only)
    unknown = (only or set()) - {label for label, _ in LOOP_VARIANTS}
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}")
    t0 = time.perf_counter()
    train, _ = load_mnist(args.data_dir, train=True)
    train = np.asarray(train, dtype=np.float32)
    fit_part, val = train[:55_000], train[55_000 : 55_000 + args.n_val]
    cache = Path(args.cache)

    def fitted(name: str, **params) -> ReverseImputer:
        folder = cache / name
        if (folder / "config.json").exists():
            # Cached: the fitted model, with today's transform-time defaults.
            imp = ReverseImputer.load(folder)
            return imp.set_params(**{k: getattr(_DEFAULTS, k) for k in TRANSFORM_PARAMS})
        t = time.perf_counter()
        imp = ReverseImputer(random_state=0, **params).fit(fit_part)
        print(f"fitted {name} in {time.perf_counter() - t:.0f} s", flush=True)
        imp.save(folder)
        return imp

    variants = [v for v in LOOP_VARIANTS if only is None or v[0] in only]
    models = {"masked AE (defaults)": (fitted("defaults", image_shape=(28, 28)), variants)}
    if only is None:
        models["plain AE"] = (fitted("plain", masking="none"), PLAIN_VARIANTS)
    if args.fit_ablations:
        models["masked AE, no self-conditioning"] = (
            fitted("no_self_condition", image_shape=(28, 28), self_condition=0.0),
            LOOP_VARIANTS[:2],
        )
        models["masked AE, no image shape"] = (fitted("generic"), LOOP_VARIANTS[:2])
    rows = []
    for kind in args.damage.split(","):
        miss = DAMAGES[kind](len(val))
        damaged = masks.apply(val, miss)
        for model, (imp, variants) in models.items():
            base = imp.get_params()
            for label, params in variants:
                imp.set_params(**{**base, **params})
                t = time.perf_counter()
                out = imp.transform(damaged)
                rows.append(
                    {"damage": kind, "autoencoder": model, "variant": label, "params": params}
                    | image_scores(out, val, miss)
                    | {"seconds": time.perf_counter() - t}
                )
                r = rows[-1]
                print(
                    f"{kind:<7} {model:<32} {label:<46} acc {r['missing_accuracy']:.4f} "
                    f"rmse {r['missing_rmse']:.4f}  {r['seconds']:.0f} s",
                    flush=True,
                )
            imp.set_params(**base)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "sweep_reverse",
                "environment": environment(),
                "args": vars(args),
                "rows": rows,
                "total_seconds": time.perf_counter() - t0,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
