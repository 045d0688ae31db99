"""Threads that fit the work: autoencoder training time with 1 thread and with all cores.

Times one training epoch of revml's default autoencoder, through the real training loop
(:func:`revml.training.train_autoencoder`), for

* the 300-row mixed CSV of ``revml.datasets.messy_table`` (encoded as ``revml impute``
  does), batch and architecture sized by revml's defaults;
* two synthetic tables of 2,048 rows with 30 and 200 features (sizes in between);
* MNIST-sized work: 10,240 rows of 784 features (40 updates of 256 rows: one epoch of the
  full 60,000 digits is 235 such updates), the default 784-1024-512-64 autoencoder;

each with ``torch.set_num_threads(1)`` and with every core, on an otherwise idle machine
and beside a second busy process (a single-threaded numpy matrix-product loop, the kind of
neighbour a shared machine has). Prints a table and writes
``benchmarks/results/threads.json``; the rule in :mod:`revml.threads` comes from it.

    python benchmarks/bench_threads.py
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
import torch

from revml.datasets import messy_table
from revml.experiments.mnist import environment
from revml.fitting import train_config
from revml.io import infer_types, read_raw
from revml.model import MLPAutoencoder, default_architecture
from revml.tabular import TabularEncoder
from revml.threads import gemm_size
from revml.training import train_autoencoder

BUSY = (
    "import numpy as np\n"
    "a = np.random.default_rng(0).random((600, 600))\n"
    "while True:\n"
    "    a = (a @ a) / 600.0\n"
)


def small_table() -> torch.Tensor:
    """The messy CSV as ``revml impute`` reads it (pandas' NA tokens missing), encoded."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messy.csv"
        path.write_text(messy_table(300, seed=0))
        frame = infer_types(read_raw(path))
    enc = TabularEncoder().fit(frame)
    return torch.from_numpy(enc.encode(frame)).float()


def synthetic(rows: int, features: int) -> torch.Tensor:
    # Timing only: correlated Gaussian columns, centred as revml scales a table.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(rows, 4)) @ rng.normal(size=(4, features))
    x = z + 0.3 * rng.normal(size=(rows, features))
    return torch.from_numpy((x - x.mean(0)) / (x.max(0) - x.min(0))).float()


def mnist_like(rows: int) -> torch.Tensor:
    # Timing only: values in [0, 1] with MNIST's share of blank pixels.
    rng = np.random.default_rng(0)
    x = rng.random((rows, 784), dtype=np.float32)
    x[rng.random((rows, 784)) < 0.8] = 0.0
    return torch.from_numpy(x)


def epoch_seconds(x: torch.Tensor, threads: int, repeats: int) -> dict:
    """Median wall time of one epoch (and per update) with ``threads`` threads."""
    n, d = x.shape
    params = {
        "epochs": 1,
        "train_batch_size": None,
        "learning_rate": 1e-3,
        "mask_fraction": 0.0,
        "masking": "mixed",
        "self_condition": 0.5,
        "image_shape": None,
    }
    cfg = train_config(params, max(n, 16), d, seed=0, masked=True)
    hidden, code = default_architecture(d, masked=True)
    widths = [d, *hidden, code, *reversed(hidden), d]
    torch.set_num_threads(threads)
    times, updates = [], 0
    for r in range(repeats + 1):  # the first epoch warms up the allocator and kernels
        torch.manual_seed(r)
        module = MLPAutoencoder(d, hidden=hidden, bottleneck=code)
        t = time.perf_counter()
        history = train_autoencoder(module, x, torch.zeros(d), cfg)
        if r:
            times.append(time.perf_counter() - t)
        updates = history.n_updates
    sec = float(np.median(times))
    return {
        "threads": threads,
        "epoch_s": sec,
        "ms_per_update": 1000 * sec / updates,
        "updates_per_epoch": updates,
        "batch": cfg.batch_size,
        "widths": widths,
        "largest_gemm": gemm_size(cfg.batch_size, widths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/threads.json")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    jobs = {
        "csv_300_rows": small_table(),
        # between the two: tables of 2,048 rows (batch 128) and 30 or 200 features
        "table_2048x30": synthetic(2048, 30),
        "table_2048x200": synthetic(2048, 200),
        "mnist_10240_rows": mnist_like(10_240),
    }
    rows = []
    for load in ("idle", "busy neighbour"):
        neighbour = None
        if load != "idle":
            env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
            neighbour = subprocess.Popen([sys.executable, "-c", BUSY], env=env)
            time.sleep(1.0)
        try:
            for name, x in jobs.items():
                for threads in sorted({1, cores}):
                    row = {"job": name, "load": load, **epoch_seconds(x, threads, args.repeats)}
                    rows.append(row)
                    print(
                        f"{name:18s} {load:15s} threads={threads}  epoch {row['epoch_s']:.3f} s"
                        f"  {row['ms_per_update']:.2f} ms/update  (largest GEMM "
                        f"{row['largest_gemm']:.2e} multiply-adds)",
                        flush=True,
                    )
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    doc = {"benchmark": "threads", "environment": environment(), "cpu_count": cores, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
