"""Out-of-core benchmark: impute a CSV several times larger than a memory cap it sets itself.

Writes a synthetic CSV (``--rows`` rows of ``--cols`` correlated numeric columns, 15% of
cells empty, a text ID column and a ``notes`` column of ``--text-bytes`` characters per row,
copied through unchanged), fits a tiny imputer on its first rows, then runs
``revml impute FILE --model M --chunk-rows N`` in a child process and measures the child's
peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a small launcher
process) against the cap (it says
so when the peak exceeds it; ``RLIMIT_AS``/``RLIMIT_DATA`` are no use as caps: torch's and
glibc's per-thread arenas reserve address space that is never resident, and the child fails
under a 1 GB limit with a few hundred MB resident). Reports rows/s (end to end: parse,
impute, write, merge), MB/s of input, the peak RSS, and the RSS of a child that only
imports revml and torch.

    python benchmarks/bench_out_of_core.py                      # ~2 GB CSV under a 1 GB cap
    python benchmarks/bench_out_of_core.py --rows 20000 --text-bytes 0 --cap-mb 1500

Reverse training costs per row and column, not per byte, so on a CPU a file of numbers
alone that dwarfs the cap takes hours; the ``notes`` column makes the file large (parsing,
carrying and writing it is what stays bounded) while the row count keeps the run short.
``--text-bytes 0`` gives a file of numbers only.

Result JSON (with environment) goes to benchmarks/results/out_of_core.json. On a GPU
machine add --device cuda for the single-GPU rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not


@dataclass(frozen=True)
class Case:
    rows: int = 200_000
    cols: int = 16
    text_bytes: int = 10_000  # with 200,000 rows: ~2.1 GB
    chunk_rows: int = 5_000
    cap_mb: int = 1024
    n_steps: int = 20
    device: str = "cpu"


@dataclass
class Result:
    case: dict
    csv_bytes: int
    seconds: float
    rows_per_s: float
    input_mb_per_s: float
    peak_rss_mb: float
    import_rss_mb: float
    file_over_cap: float
    output_rows: int
    environment: dict


def write_csv(
    path: Path, rows: int, cols: int, text_bytes: int = 0, seed: int = 0, block: int = 10_000
) -> None:
    """The synthetic table, written block by block (bounded memory here too)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(3, cols))
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ", dtype=np.uint8)
    pool = rng.choice(letters, size=1 << 22).tobytes().decode()
    with open(path, "w") as f:
        notes = ",notes" if text_bytes else ""
        f.write("id," + ",".join(f"x{j}" for j in range(cols)) + notes + "\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            x = rng.normal(size=(n, 3)) @ mix + rng.normal(0, 0.1, (n, cols))
            text = np.char.mod("%.5f", x).astype(object)
            text[rng.random(x.shape) < 0.15] = ""
            ids = np.char.mod("r%d", np.arange(start, start + n)).astype(object)
            lines = [",".join(r) for r in np.column_stack([ids, text]).tolist()]
            if text_bytes:
                at = rng.integers(0, len(pool) - text_bytes, n)
                lines = [
                    f"{line},{pool[a : a + text_bytes]}" for line, a in zip(lines, at, strict=True)
                ]
            f.write("\n".join(lines) + "\n")


#: Runs the command and prints its children's peak RSS (KiB). It is a fresh, small process,
#: so its child is forked from it and not from this one: a child forked from a large parent
#: inherits that parent's resident pages in ``ru_maxrss`` (fork and exec both record it).
_MEASURE = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)"
)


def _child_rss_mb(cmd: list[str]) -> tuple[float, float, str]:
    """Peak RSS (MB) and wall seconds of ``cmd`` run in a child; its stderr."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - t0
    peak_kib, code = done.stdout.split()[-2:]
    if done.returncode != 0 or code != "0":
        raise RuntimeError(f"{cmd} failed:\n{done.stderr[-3000:]}")
    return int(peak_kib) / 1024, seconds, done.stderr


def run(case: Case, workdir: Path) -> Result:
    import pandas as pd

    from revml import ReverseImputer
    from revml.experiments.mnist import environment
    from revml.io import infer_types

    data = workdir / "big.csv"
    write_csv(data, case.rows, case.cols, case.text_bytes)
    size = data.stat().st_size
    sample = pd.read_csv(data, nrows=20_000, dtype=str, keep_default_na=False)
    sample = sample.drop(columns=["id", "notes"], errors="ignore")
    frame = infer_types(sample.mask(sample.eq(""), None))
    imp = ReverseImputer(random_state=0, epochs=3, n_steps=case.n_steps, hidden=(32,), bottleneck=4)
    imp.fit(frame).save(workdir / "model")
    import_rss, _, _ = _child_rss_mb([sys.executable, "-c", "import revml.cli, torch"])
    out = workdir / "out.csv"
    cmd = [sys.executable, "-m", "revml.cli", "impute", str(data), "-o", str(out)]
    cmd += ["--model", str(workdir / "model"), "--chunk-rows", str(case.chunk_rows)]
    cmd += ["--device", case.device, "--quiet"]
    peak, seconds, _ = _child_rss_mb(cmd)
    with open(out) as f:
        out_rows = sum(1 for _ in f) - 1
    if out_rows != case.rows:
        raise RuntimeError(f"output has {out_rows} rows, expected {case.rows}")
    return Result(
        case=asdict(case),
        csv_bytes=size,
        seconds=seconds,
        rows_per_s=case.rows / seconds,
        input_mb_per_s=size / 1e6 / seconds,
        peak_rss_mb=peak,
        import_rss_mb=import_rss,
        file_over_cap=size / (case.cap_mb * 1024 * 1024),
        output_rows=out_rows,
        environment=environment(),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Case()
    p.add_argument("--rows", type=int, default=d.rows)
    p.add_argument("--cols", type=int, default=d.cols)
    p.add_argument("--text-bytes", type=int, default=d.text_bytes)
    p.add_argument("--chunk-rows", type=int, default=d.chunk_rows)
    p.add_argument("--cap-mb", type=int, default=d.cap_mb, help="peak RSS allowed (MB)")
    p.add_argument("--n-steps", type=int, default=d.n_steps)
    p.add_argument("--device", default=d.device)
    p.add_argument("--workdir", help="where the CSV goes (default: a temporary folder)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "out_of_core.json"))
    args = p.parse_args()
    case = Case(
        args.rows,
        args.cols,
        args.text_bytes,
        args.chunk_rows,
        args.cap_mb,
        args.n_steps,
        args.device,
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        result = run(case, Path(tmp))
    if result.peak_rss_mb > case.cap_mb:
        print(f"peak RSS {result.peak_rss_mb:.0f} MB is over the {case.cap_mb} MB cap")
    Path(args.out).write_text(json.dumps(asdict(result), indent=1) + "\n")
    print(
        f"{result.csv_bytes / 1e6:.0f} MB CSV ({case.rows} rows, {case.cols} numeric cols), "
        f"cap {case.cap_mb} MB ({result.file_over_cap:.1f}x smaller than the file): "
        f"{result.rows_per_s:,.0f} rows/s, {result.input_mb_per_s:.1f} MB/s, peak RSS "
        f"{result.peak_rss_mb:.0f} MB (import alone {result.import_rss_mb:.0f} MB); wrote "
        f"{args.out}"
    )


if __name__ == "__main__":
    main()
