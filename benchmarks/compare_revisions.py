"""Before and after: revml's defaults at two git revisions, on validation masks, in one run.

Every change that buys speed must show what it does to accuracy. This runs the same
measurement -- revml's defaults fit and transform on peer-suite tables under validation
masks (``suite.VALIDATION_SEEDS``; the scored seeds are never used to choose anything) -- once
with the package of ``--base`` (checked out into a temporary directory) and once with this
work tree, in fresh processes on the same machine, and prints a table of error and fit /
transform seconds side by side with their ratios. The two revisions take turns table by
table, the first of each pair alternating (base, new; new, base; ...): a shared CPU's speed
drifts over a run of minutes, and one revision measured after the other would take all of
that drift as its own. ``--random-states``
repeats every fit with other training seeds: a change of a few tenths of a percent on one
seed is often the training's own noise, and the mean over seeds tells the two apart.

    python benchmarks/compare_revisions.py --base 19460e6
    python benchmarks/compare_revisions.py --base HEAD --tables boston auto --random-states 0 1 2

Writes ``benchmarks/results/compare_revisions.json`` (device, threads, versions, both
revisions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

#: The tables of the training-length sweep: numeric, integer-heavy and mixed-type, 150 to
#: 700 rows, where a fit's cost is mostly per-update overhead.
DEFAULT_TABLES = ("boston", "auto", "breast_cancer", "diabetes", "bdims", "penguins")


def measure(
    tables: list[str], mechanisms: list[str], seed: int, random_states: list[int]
) -> list[dict]:
    """Fit + transform revml's defaults on each (table, mechanism); score the hidden cells."""
    import suite
    import torch

    import revml
    from revml import ReverseImputer

    rows = []
    for cell in suite.damaged_tables(tables, mechanisms, seed, random_states):
        imp = ReverseImputer(random_state=cell.random_state)
        scored = suite.fit_and_score(imp, cell.frame, cell.damaged, cell.mask, cell.ranges)
        rows.append(
            {
                "table": cell.table,
                "mechanism": cell.mechanism,
                "seed": seed,
                "random_state": cell.random_state,
                **scored,
                "updates": int(getattr(imp, "n_updates_", 0) or 0),
                "torch_threads": torch.get_num_threads(),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    rows.append({"revml_file": revml.__file__})
    return rows


def _run_at(tree: Path, args: argparse.Namespace, tables: list[str]) -> list[dict]:
    """``measure`` of ``tables`` in a fresh process that imports revml from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, __file__, "--measure", "--seed", str(args.seed),
           "--tables", *tables, "--mechanisms", *args.mechanisms,
           "--random-states", *map(str, args.random_states)]  # fmt: skip
    out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"measurement at {tree} failed:\n{out.stderr[-3000:]}")
    rows = json.loads(out.stdout)
    where = Path(rows.pop()["revml_file"]).resolve()
    if tree.resolve() not in where.parents:
        raise RuntimeError(f"the run at {tree} imported revml from {where}")
    return rows


def _revision(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _mean_over_seeds(rows: list[dict]) -> list[dict]:
    """One row per (table, mechanism): every measure averaged over the training seeds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["table"], row["mechanism"]), []).append(row)
    out = []
    for (table, mechanism), group in groups.items():
        row = {"table": table, "mechanism": mechanism, "n_random_states": len(group)}
        for key in ("rmse", "accuracy", "fit_seconds", "transform_seconds", "updates"):
            values = [r[key] for r in group]
            row[key] = None if None in values else float(np.mean(values))
        out.append(row)
    return out


def compare(base_rows: list[dict], new_rows: list[dict]) -> list[dict]:
    out = []
    pairs = zip(_mean_over_seeds(base_rows), _mean_over_seeds(new_rows), strict=True)
    for old, new in pairs:
        row = {"table": old["table"], "mechanism": old["mechanism"]}
        row["n_random_states"] = old["n_random_states"]
        for key in ("rmse", "accuracy", "fit_seconds", "transform_seconds", "updates"):
            row[f"base_{key}"], row[f"new_{key}"] = old[key], new[key]
        if old["rmse"] is not None:
            row["rmse_ratio"] = new["rmse"] / old["rmse"]
        total_old = old["fit_seconds"] + old["transform_seconds"]
        row["speedup"] = total_old / (new["fit_seconds"] + new["transform_seconds"])
        out.append(row)
    return out


def markdown(rows: list[dict], base: str) -> str:
    lines = [
        f"| table | mechanism | RMSE {base} | RMSE new | ratio | accuracy {base} / new "
        f"| fit + transform s {base} | new | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = "-"
        if r["base_accuracy"] is not None:
            acc = f"{r['base_accuracy']:.3f} / {r['new_accuracy']:.3f}"
        lines.append(
            f"| {r['table']} | {r['mechanism']} | {r['base_rmse']:.4f} | {r['new_rmse']:.4f} "
            f"| {r['rmse_ratio']:.3f} | {acc} "
            f"| {r['base_fit_seconds']:.1f} + {r['base_transform_seconds']:.1f} "
            f"| {r['new_fit_seconds']:.1f} + {r['new_transform_seconds']:.1f} "
            f"| {r['speedup']:.2f}x |"
        )
    lines.insert(0, f"(means over {rows[0]['n_random_states']} training seeds)\n")
    ratios = [r["rmse_ratio"] for r in rows]
    speed = [r["speedup"] for r in rows]
    lines.append(
        f"\nRMSE ratio new / {base}: geometric mean {np.exp(np.mean(np.log(ratios))):.4f}, "
        f"worst {max(ratios):.4f}; speed-up: geometric mean "
        f"{np.exp(np.mean(np.log(speed))):.2f}x"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="the git revision to compare against")
    ap.add_argument("--tables", nargs="+", default=list(DEFAULT_TABLES))
    ap.add_argument("--mechanisms", nargs="+", default=["mcar20"])
    ap.add_argument("--seed", type=int, default=100, help="a validation mask seed")
    ap.add_argument(
        "--random-states", type=int, nargs="+", default=[0],
        help="training seeds of every fit; the table shows their mean",
    )  # fmt: skip
    ap.add_argument("--out", default=str(HERE / "results" / "compare_revisions.json"))
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.tables, args.mechanisms, args.seed, args.random_states)))
        return
    import suite
    from compare_suite import environment

    suite.check_validation_seed(ap, args.seed)
    t0 = time.perf_counter()
    base = _revision(args.base)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / base
        tree.mkdir()
        archive = subprocess.run(["git", "archive", base], cwd=ROOT, capture_output=True,
                                 check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        base_rows, new_rows = [], []
        for i, name in enumerate(args.tables):
            turns = [(tree, base_rows), (ROOT, new_rows)]
            for where, rows in turns if i % 2 == 0 else turns[::-1]:
                rows.extend(_run_at(where, args, [name]))
    rows = compare(base_rows, new_rows)
    table = markdown(rows, base)
    print(table)
    result = {
        "benchmark": "compare_revisions",
        "environment": environment(base_rows[0]["torch_threads"]),
        "base_revision": base,
        "args": {k: v for k, v in vars(args).items() if k != "measure"},
        "order": "table by table, the first revision of each table alternating (base first)",
        "rows": rows,
        "base_runs": base_rows,
        "new_runs": new_rows,
        "table": table,
        "total_seconds": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
