"""What a per-row stop in the reverse loop would cost in accuracy, and the work it would save.

The loop runs every row for ``n_steps`` steps. A row whose missing entries have stopped
moving could leave the batch early. This sweep *freezes* such rows instead of removing
them (no compaction, so it measures accuracy and the share of row-steps a stop would
save, not time): after step ``--min-step``, a row whose missing entries moved by less than
``tol`` (largest absolute change over the last ``--window`` steps, in the imputer's scaled
units) keeps its values from then on. Every reverse loop of a fit and transform is
frozen alike (the blend's validation loops too). ``tol`` 0 is the library's own loop.

revml's defaults (``backend="reference"``) fit and transform each table under the
suite's validation masks (``suite.VALIDATION_SEEDS``; never the scored ones), and the
table prints, per tolerance, the RMSE ratio to ``tol`` 0 (geometric mean and worst over
the cells) and the mean share of row-steps saved.

    OMP_NUM_THREADS=1 python benchmarks/sweep_row_stop.py --tols 0 0.01 0.02
    python benchmarks/sweep_row_stop.py --data-dir ../shared/data/mnist --tols 0 0.01 0.02

``--data-dir`` runs the images instead: one float32 fit (15,000 training digits, 30
epochs, ``image_shape=(28, 28)``, as ``sweep_loop.py``), then 1,000 held-out *training*
digits under the comparison table's four damages (mask seed 5), missing-pixel accuracy
and RMSE per tolerance (``--out`` defaults to ``sweep_row_stop_mnist.json``).

Writes ``benchmarks/results/sweep_row_stop.json`` (device, threads, versions, revision).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from pathlib import Path

import numpy as np
import suite
import torch
from compare_revisions import DEFAULT_TABLES
from compare_suite import environment, write_json

import revml.reverse as reverse
from revml import ReverseImputer
from revml.reference import reference_step

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def frozen_rows(tol: float, window: int, min_step: int, counts: dict):
    """Patch the loop so that converged rows keep their values; count the row-steps."""
    original = reverse.reverse_impute

    def loop(module, x, miss, rows, cfg, lo=None, hi=None, step_fn=None):
        step_fn = step_fn or reference_step
        x, m, v = x.clone(), torch.zeros_like(x), torch.zeros_like(x)
        loss = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        frozen = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        kept, history = x.clone(), {}
        for step in range(1, cfg.n_steps + 1):
            loss = step_fn(module, x, miss, m, v, rows, step, cfg, lo, hi)
            x[frozen] = kept[frozen]
            history[step] = x.clone()
            past = history.pop(step - window, None)
            if past is None or step < min_step:
                continue
            moved = torch.where(miss, (x - past).abs(), torch.zeros_like(x)).amax(1)
            new = (moved < tol) & ~frozen
            counts["saved"] += int(new.sum()) * (cfg.n_steps - step)
            kept[new] = x[new]
            frozen |= new
        counts["row_steps"] += x.shape[0] * cfg.n_steps
        return x, loss

    reverse.reverse_impute = loop if tol > 0 else original
    try:
        yield
    finally:
        reverse.reverse_impute = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", nargs="+", default=list(DEFAULT_TABLES))
    ap.add_argument("--mechanisms", nargs="+", default=["mcar20", "mnar20"])
    ap.add_argument("--seed", type=int, default=100, help="a validation mask seed")
    ap.add_argument("--random-states", type=int, nargs="+", default=[0])
    ap.add_argument("--tols", type=float, nargs="+", default=[0.0, 0.01, 0.02])
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--min-step", type=int, default=20)
    ap.add_argument("--data-dir", default=None, help="MNIST: the images instead of tables")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.data_dir is not None:
        return images(args)
    args.out = args.out or str(HERE / "results" / "sweep_row_stop.json")
    suite.check_validation_seed(ap, args.seed)
    if 0.0 not in args.tols:
        ap.error("--tols needs 0 (the library's loop) to compare against")
    t0 = time.perf_counter()
    rows = []
    for cell in suite.damaged_tables(args.tables, args.mechanisms, args.seed, args.random_states):
        name, mech, state = cell.table, cell.mechanism, cell.random_state
        for tol in args.tols:
            counts = {"saved": 0, "row_steps": 0}
            with frozen_rows(tol, args.window, args.min_step, counts):
                imp = ReverseImputer(random_state=state, backend="reference")
                scored = suite.fit_and_score(imp, cell.frame, cell.damaged, cell.mask, cell.ranges)
            share = counts["saved"] / counts["row_steps"] if counts["row_steps"] else 0.0
            rows.append(
                {"table": name, "mechanism": mech, "random_state": state, "tol": tol,
                 "rmse": scored["rmse"], "accuracy": scored.get("accuracy"),
                 "seconds": scored["fit_seconds"] + scored["transform_seconds"],
                 "saved_share": share}
            )  # fmt: skip
            print(f"{name:14s} {mech} seed {state} tol {tol:<6g} rmse {scored['rmse']:.4f}"
                  f"  saved {share:.3f}", flush=True)  # fmt: skip
    base = {(r["table"], r["mechanism"], r["random_state"]): r for r in rows if r["tol"] == 0}
    summary = []
    lines = ["| tol | RMSE ratio to tol 0: geometric mean | worst | best | row-steps saved |",
             "|---|---|---|---|---|"]  # fmt: skip
    for tol in args.tols:
        mine = [r for r in rows if r["tol"] == tol]
        ratios = [r["rmse"] / base[(r["table"], r["mechanism"], r["random_state"])]["rmse"]
                  for r in mine]  # fmt: skip
        entry = {"tol": tol, "rmse_ratio_geomean": float(np.exp(np.mean(np.log(ratios)))),
                 "rmse_ratio_worst": float(max(ratios)), "rmse_ratio_best": float(min(ratios)),
                 "saved_share_mean": float(np.mean([r["saved_share"] for r in mine]))}  # fmt: skip
        summary.append(entry)
        lines.append(
            f"| {tol:g} | {entry['rmse_ratio_geomean']:.4f} | {entry['rmse_ratio_worst']:.4f} "
            f"| {entry['rmse_ratio_best']:.4f} | {entry['saved_share_mean']:.1%} |"
        )
    table = "\n".join(lines)
    print(table)
    write_json(
        Path(args.out),
        {"benchmark": "sweep_row_stop", "environment": environment(torch.get_num_threads()),
         "args": vars(args), "rows": rows, "summary": summary, "table": table,
         "total_seconds": time.perf_counter() - t0},
    )  # fmt: skip
    print(f"wrote {args.out}")


def images(args: argparse.Namespace) -> None:
    from comparison_table import DAMAGES, damage_mask
    from sweep_scaling import validation_digits

    from revml.metrics import image_scores

    t0 = time.perf_counter()
    fit, val, _ = validation_digits(args.data_dir)
    state = args.random_states[0]
    imp = ReverseImputer(image_shape=(28, 28), epochs=30, random_state=state, precision="float32")
    imp.fit(fit)
    imp.set_params(backend="reference")
    print(f"fitted in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for damage, tol in itertools.product(DAMAGES, args.tols):
        miss = damage_mask(damage, len(val), seed=5)
        counts = {"saved": 0, "row_steps": 0}
        t = time.perf_counter()
        with frozen_rows(tol, args.window, args.min_step, counts):
            filled = np.asarray(imp.transform(np.where(miss, np.nan, val)))
        scores = image_scores(filled, val, miss)
        rows.append(
            {"damage": damage, "tol": tol, "random_state": state,
             "missing_accuracy": scores["missing_accuracy"], "missing_rmse": scores["missing_rmse"],
             "transform_seconds": time.perf_counter() - t,
             "saved_share": counts["saved"] / max(counts["row_steps"], 1)}
        )  # fmt: skip
        saved = rows[-1]["saved_share"]
        print(f"{damage:<8} tol {tol:<6g} acc {scores['missing_accuracy']:.4f} rmse "
              f"{scores['missing_rmse']:.4f} saved {saved:.3f}", flush=True)  # fmt: skip
    base = {r["damage"]: r for r in rows if r["tol"] == 0}
    lines = ["| tol | " + " | ".join(DAMAGES) + " |", "|---|" + "---|" * len(DAMAGES)]
    for tol in args.tols:
        cells = []
        for r in (r for r in rows if r["tol"] == tol):
            ref = base[r["damage"]]
            points = 100 * (r["missing_accuracy"] - ref["missing_accuracy"])
            cells.append(f"{points:+.2f} pts, RMSE x{r['missing_rmse'] / ref['missing_rmse']:.4f}, "
                         f"saved {r['saved_share']:.0%}")  # fmt: skip
        lines.append(f"| {tol:g} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out or HERE / "results" / "sweep_row_stop_mnist.json")
    write_json(
        out,
        {"benchmark": "sweep_row_stop", "data": "mnist", "environment":
         environment(torch.get_num_threads()), "args": vars(args), "rows": rows, "table": table,
         "total_seconds": time.perf_counter() - t0},
    )  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
