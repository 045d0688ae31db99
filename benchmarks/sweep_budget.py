"""The training budget of a table: masked updates per fit against RMSE and time.

On the peer suite's validation masks (``suite.py``, mask seed 100; the suite scores seed 0;
tables capped at 1,000 rows as the suite's runs cap them),
revml's defaults fit with each budget of optimiser updates, forced through the public
``epochs=`` (``ceil(budget / updates per epoch)`` at the default batch size, the clamps of
``revml.training.default_train_config`` included). Every (table, mechanism, training seed)
runs all budgets one after the other in one process, so their times are side by side.
Prints the RMSE of each budget, its ratio to the reference budget (geometric mean over the
cells and the worst) and the time, and writes JSON with the environment and git revision.
This is what set ``revml.training.BLENDED_TABLE_UPDATES``.

    python benchmarks/sweep_budget.py
    python benchmarks/sweep_budget.py --tables boston,wine --budgets 10000,2500 --random-states 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: The seven tables of the training sweeps (numeric, integer-heavy, mixed) and eight where
#: revml was weakest against the peers.
DEFAULT_TABLES = (
    "boston,auto,breast_cancer,diabetes,bdims,penguins,wine,"
    "airquality,college,credit,pima,survey,weather,hitters,chile"
)


def epochs_for(budget: int, n_rows: int) -> int:
    """The epochs that give about ``budget`` updates on ``n_rows`` rows at the default batch,
    clamped as ``default_train_config`` clamps its own."""
    from revml.training import default_train_config

    batch = default_train_config(n_rows, masked=True).batch_size
    return int(min(500, max(10, math.ceil(budget / math.ceil(n_rows / batch)))))


def run(
    tables: list[str],
    mechanisms: list[str],
    budgets: list[int],
    random_states: list[int],
    max_rows: int,
):
    import suite
    import torch

    from revml import ReverseImputer
    from revml.training import LARGE_ROWS

    rows = []
    for name in tables:
        frame = suite.TABLES_BY_NAME[name].load(max_rows=max_rows)
        if len(frame) >= LARGE_ROWS:  # forcing epochs would switch its early stopping off
            raise SystemExit(f"{name} has {len(frame)} rows: tables train the large budget "
                             f"from {LARGE_ROWS}; lower --max-rows")  # fmt: skip
        ranges = suite.observed_ranges(frame)
        for mechanism in mechanisms:
            mask = suite.make_mask(frame, mechanism, 100)
            damaged = suite.hide(frame, mask)
            for random_state in random_states:
                for budget in budgets:
                    epochs = epochs_for(budget, len(frame))
                    imp = ReverseImputer(random_state=random_state, epochs=epochs)
                    scored = suite.fit_and_score(imp, frame, damaged, mask, ranges)
                    rows.append(
                        {
                            "table": name,
                            "mechanism": mechanism,
                            "random_state": random_state,
                            "budget": budget,
                            "epochs": epochs,
                            "updates": int(imp.n_updates_),
                            **scored,
                            "torch_threads": torch.get_num_threads(),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict], budgets: list[int]) -> tuple[str, dict]:
    """A markdown table (RMSE averaged over the training seeds) and the ratios to the first
    budget."""
    cells = list(dict.fromkeys((r["table"], r["mechanism"]) for r in rows))
    mean = {}
    for cell in cells:
        for b in budgets:
            got = [r for r in rows if (r["table"], r["mechanism"]) == cell and r["budget"] == b]
            mean[cell, b] = (
                float(np.mean([r["rmse"] for r in got])),
                float(np.mean([r["fit_seconds"] + r["transform_seconds"] for r in got])),
            )
    head = "| table | mechanism | " + " | ".join(f"{b:,} updates" for b in budgets) + " |"
    lines = [head, "|---|---|" + "---|" * len(budgets)]
    for cell in cells:
        parts = [f"{mean[cell, b][0]:.4f} ({mean[cell, b][1]:.1f} s)" for b in budgets]
        lines.append(f"| {cell[0]} | {cell[1]} | " + " | ".join(parts) + " |")
    ref = budgets[0]
    stats = {}
    for b in budgets:
        ratio = np.array([mean[c, b][0] / mean[c, ref][0] for c in cells])
        stats[b] = {
            "rmse_ratio_geomean": float(np.exp(np.log(ratio).mean())),
            "rmse_ratio_worst": float(ratio.max()),
            "rmse_ratio_best": float(ratio.min()),
            "seconds": float(sum(mean[c, b][1] for c in cells)),
        }
    lines.append("")
    for b, s in stats.items():
        lines.append(
            f"{b:,} updates: RMSE / {ref:,}-update RMSE geometric mean "
            f"{s['rmse_ratio_geomean']:.4f}, worst {s['rmse_ratio_worst']:.4f}, best "
            f"{s['rmse_ratio_best']:.4f}; {s['seconds']:.0f} s of fits + transforms"
        )
    return "\n".join(lines), stats


def main() -> None:
    from comparison_table import write_result

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default=DEFAULT_TABLES, help="comma-separated suite tables")
    ap.add_argument("--mechanisms", default="mcar20,mnar20")
    ap.add_argument("--budgets", default="10000,2500", help="the first is the reference")
    ap.add_argument("--random-states", nargs="+", type=int, default=[0])
    ap.add_argument("--max-rows", type=int, default=1000, help="as the suite's runs cap them")
    ap.add_argument("--out", default="benchmarks/results/sweep_budget.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = run(
        args.tables.split(","),
        args.mechanisms.split(","),
        budgets,
        args.random_states,
        args.max_rows,
    )
    table, stats = summary(rows, budgets)
    print(table)
    write_result(args.out, "sweep_budget", args, t0, rows=rows, summary=stats, table=table)


if __name__ == "__main__":
    main()
