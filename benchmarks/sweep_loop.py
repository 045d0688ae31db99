"""The reverse loop's cost on images: precision, steps and restarts of imputation alone.

One float32 fit per training seed (15,000 training digits, 30 epochs,
``image_shape=(28, 28)``, as in sweep_precision.py), then the same fitted network imputes
1,000 held-out training digits (never the test set) under the comparison table's four
damages (rows, 50% MCAR, centred square, left half; mask seed 5) with each loop
configuration below. Only imputation changes between configurations, so their accuracy
and time are compared on one network, side by side in one run. ``precision="auto"`` may
run the loop in bfloat16 only if it stays within 0.05 points of float32's missing-pixel
accuracy and 0.5% of its RMSE on every damage, averaged over the training seeds.

``--protocol seed`` asks the same of the seed's protocol in the MNIST command: a plain
autoencoder (``masking="none"``, float32 training) and the seed's loop
(``revml.experiments.mnist.SEED_REVERSE_PARAMS``: 300 steps, zero start, one restart) in
float32 against bfloat16, scored after the clean pass and before it.

Writes benchmarks/results/sweep_loop.json (``--protocol seed``: sweep_loop_seed.json).

    python benchmarks/sweep_loop.py --data-dir ../shared/data/mnist --random-states 0 1 2 3
    python benchmarks/sweep_loop.py --data-dir ../shared/data/mnist --protocol seed
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from comparison_table import DAMAGES, damage_mask, write_result
from sweep_scaling import validation_digits

from revml import ReverseImputer
from revml.experiments.mnist import SEED_REVERSE_PARAMS
from revml.metrics import image_scores
from revml.precision import fast_bfloat16

DEFAULT = {"precision": "float32", "n_steps": 75, "n_restarts": 2}
CONFIGS = {
    "float32 (default)": DEFAULT,
    "bfloat16 loop": DEFAULT | {"precision": "bfloat16"},
    "float32, 50 steps": DEFAULT | {"n_steps": 50},
    "bfloat16, 50 steps": DEFAULT | {"precision": "bfloat16", "n_steps": 50},
    "float32, 1 restart": DEFAULT | {"n_restarts": 1},
}
#: ``--protocol seed``: the seed's loop, as the MNIST command runs it, in both precisions.
SEED = {**SEED_REVERSE_PARAMS, "fill": "zeros", "strategy": "reverse"}
SEED_CONFIGS = {
    "float32 (default)": SEED | {"precision": "float32"},
    "bfloat16 loop": SEED | {"precision": "bfloat16"},
}


def runs(data_dir, random_states, log, configs=CONFIGS, protocol="defaults") -> list[dict]:
    fit, val, _ = validation_digits(data_dir)
    rows = []
    # The seed's autoencoder is a plain one; the defaults' is masked and knows the image.
    shape = {"masking": "none"} if protocol == "seed" else {"image_shape": (28, 28)}
    for state in random_states:
        t = time.perf_counter()
        imp = ReverseImputer(**shape, epochs=30, random_state=state, precision="float32").fit(fit)
        fit_s = time.perf_counter() - t
        log(f"seed {state}: fitted in {fit_s:.0f} s")
        for damage in DAMAGES:
            miss = damage_mask(damage, len(val), seed=5)
            damaged = np.where(miss, np.nan, val)
            for name, params in configs.items():
                t = time.perf_counter()
                details = imp.set_params(**params).transform_details(damaged)
                seconds = time.perf_counter() - t
                s = image_scores(np.asarray(details.X), val, miss)
                before = details.X_before_clean
                before = None if before is None else image_scores(np.asarray(before), val, miss)
                rows.append(
                    {
                        "config": name,
                        "random_state": state,
                        "damage": damage,
                        "missing_accuracy": s["missing_accuracy"],
                        "missing_rmse": s["missing_rmse"],
                        "missing_accuracy_before_clean": None
                        if before is None
                        else before["missing_accuracy"],
                        "fit_seconds": fit_s,
                        "transform_seconds": seconds,
                    }
                )
                log(
                    f"seed {state} {damage:<7} {name:<20} acc {s['missing_accuracy']:.4f} "
                    f"rmse {s['missing_rmse']:.4f}  {seconds:.1f} s"
                )
    return rows


def summary(rows: list[dict], configs=CONFIGS) -> tuple[list[dict], str]:
    """Per configuration and damage: mean accuracy, RMSE and seconds over the seeds, and
    the differences to the default."""
    out = []
    for name in configs:
        for damage in DAMAGES:
            sel = [r for r in rows if r["config"] == name and r["damage"] == damage]
            ref = [r for r in rows if r["config"] == "float32 (default)" and r["damage"] == damage]
            acc = float(np.mean([r["missing_accuracy"] for r in sel]))
            rmse = float(np.mean([r["missing_rmse"] for r in sel]))
            out.append(
                {
                    "config": name,
                    "damage": damage,
                    "missing_accuracy": acc,
                    "missing_rmse": rmse,
                    "accuracy_points_vs_default": 100
                    * (acc - float(np.mean([r["missing_accuracy"] for r in ref]))),
                    "rmse_ratio_vs_default": rmse
                    / float(np.mean([r["missing_rmse"] for r in ref])),
                    "transform_seconds": float(np.mean([r["transform_seconds"] for r in sel])),
                }
            )
    lines = [
        "| loop | " + " | ".join(DAMAGES) + " | transform, 4 damages |",
        "|---|" + "---|" * (len(DAMAGES) + 1),
    ]
    for name in configs:
        cells = [s for s in out if s["config"] == name]
        text = [
            f"{100 * c['missing_accuracy']:.2f}% / {c['missing_rmse']:.4f} "
            f"({c['accuracy_points_vs_default']:+.2f} pts, {c['rmse_ratio_vs_default']:.4f})"
            for c in cells
        ]
        seconds = sum(c["transform_seconds"] for c in cells)
        lines.append(f"| {name} | " + " | ".join(text) + f" | {seconds:.0f} s |")
    return out, "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--random-states", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--protocol", choices=["defaults", "seed"], default="defaults")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    configs = SEED_CONFIGS if args.protocol == "seed" else CONFIGS
    if args.out is None:
        name = "sweep_loop_seed" if args.protocol == "seed" else "sweep_loop"
        args.out = f"benchmarks/results/{name}.json"
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    rows = runs(args.data_dir, args.random_states, log, configs, args.protocol)
    per_config, table = summary(rows, configs)
    print(table)
    write_result(
        args.out,
        "sweep_loop",
        args,
        t0,
        configs=configs,
        fast_bfloat16_cpu=fast_bfloat16(torch.device("cpu")),
        torch_threads=torch.get_num_threads(),
        runs=rows,
        summary=per_config,
        markdown=table,
    )


if __name__ == "__main__":
    main()
