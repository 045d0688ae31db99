"""Mixed precision: bfloat16 against float32 on the validation masks, accuracy and time.

Tables: scikit-learn's breast cancer, wine and diabetes at 20% and 50% MCAR, mask seeds 1
and 2 (the comparison table scores seed 0), revml's defaults with ``precision="float32"``
and ``"bfloat16"``; RMSE on min-max scaled values averaged over the seeds, and each
configuration's wall time for its twelve fits and transforms.

Images: a shortened MNIST fit (15,000 training digits, 30 epochs, ``image_shape=(28, 28)``)
scored on 1,000 held-out training digits under the rows and centred-square damage, in both
precisions, with the fit and transform times.

Both measured side by side in one run. Writes benchmarks/results/sweep_precision.json;
``precision="auto"`` picks bfloat16 only if it stays within 0.5% of float32's RMSE and
0.05 points of its accuracy here (revml.precision.AUTO_BFLOAT16).

    python benchmarks/sweep_precision.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from comparison_table import write_result
from sweep_scaling import SEEDS, markdown, table_runs, timing_log, validation_digits

from revml import ReverseImputer
from revml.metrics import image_scores
from revml.precision import fast_bfloat16

CONFIGS = {"float32": {"precision": "float32"}, "bfloat16": {"precision": "bfloat16"}}


def mnist_runs(data_dir, log, random_states=(0,)) -> list[dict]:
    fit, val, damages = validation_digits(data_dir)
    rows = []
    for name, state in itertools.product(CONFIGS, random_states):
        t = time.perf_counter()
        imp = ReverseImputer(image_shape=(28, 28), epochs=30, random_state=state, precision=name)
        imp.fit(fit)
        fit_s = time.perf_counter() - t
        for damage, miss in damages.items():
            t = time.perf_counter()
            pred = np.asarray(imp.transform(np.where(miss, np.nan, val)))
            s = image_scores(pred, val, miss)
            rows.append(
                {
                    "precision": name,
                    "random_state": state,
                    "damage": damage,
                    "missing_accuracy": s["missing_accuracy"],
                    "missing_rmse": s["missing_rmse"],
                    "fit_seconds": fit_s,
                    "transform_seconds": time.perf_counter() - t,
                }
            )
            log(f"mnist {name} {damage}: {rows[-1]}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--skip-images", action="store_true")
    ap.add_argument("--skip-tables", action="store_true")
    ap.add_argument(
        "--random-states", type=int, nargs="+", default=[0], help="training seeds of the MNIST fits"
    )
    ap.add_argument("--out", default="benchmarks/results/sweep_precision.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    log = timing_log(CONFIGS, seconds)

    tables = [] if args.skip_tables else table_runs(log, CONFIGS, ["gaussian"])
    images = [] if args.skip_images else mnist_runs(args.data_dir, log, args.random_states)
    table = markdown(tables) if tables else ""
    print(table)
    write_result(
        args.out,
        "sweep_precision",
        args,
        t0,
        mask_seeds=list(SEEDS),
        fast_bfloat16_cpu=fast_bfloat16(torch.device("cpu")),
        torch_threads=torch.get_num_threads(),
        table_seconds=seconds,
        tables=tables,
        images=images,
        markdown=table,
    )


if __name__ == "__main__":
    main()
