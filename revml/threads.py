"""How many CPU threads torch gets for a job: one for small GEMMs, all cores for large ones.

A small autoencoder's matrix products (a batch of 16 rows through 30-64-30 layers) take
microseconds; splitting them over OpenMP threads costs more than it saves, and on a busy
machine the threads spin against each other and the other process (one epoch of 19
updates measured 10 s under load). :func:`torch_threads` runs such jobs with one thread and
leaves large ones on every thread torch has (``benchmarks/bench_threads.py`` measured the
threshold; the README has the figures). On a machine where another process is busy, large
jobs are faster on one thread too (MNIST: 2.3x): ``threads=1`` says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: Jobs whose largest matrix product has fewer multiply-adds than this (rows of a batch
#: times the two widths of the widest layer) run with one thread on the CPU. Measured with
#: benchmarks/bench_threads.py on the 2-core x86 CPU (benchmarks/results/threads.json, ms
#: per training update, 1 thread vs 2): the 300-row CSV (3.3e4) 1.42 vs 1.45 idle and
#: 1.82 vs 2.99 beside a busy process; 2,048 x 30 (2.6e5) 1.78 vs 2.01 and 1.30 vs 14.7;
#: 2,048 x 200 (1.0e7) 8.30 vs 8.34 and 8.88 vs 31.4; MNIST (2.1e8) 68.6 vs 40.5 idle
#: (two threads 1.7x faster) but 74.1 vs 169 busy. Two threads pay only above ~1e7.
SMALL_GEMM = 20_000_000


def layer_widths(module: torch.nn.Module) -> list[int]:
    """Input width, then every linear layer's output width (any module: its 2-D weights)."""
    weights = [p for p in module.parameters() if p.ndim == 2]
    return [weights[0].shape[1], *(w.shape[0] for w in weights)] if weights else [1, 1]


def gemm_size(rows: int, widths: list[int] | tuple[int, ...]) -> int:
    """Multiply-adds of the largest matrix product of ``rows`` rows through layers of
    ``widths`` (input, hidden..., code, ..., output)."""
    return int(rows) * max((a * b for a, b in itertools.pairwise(widths)), default=0)


def threads_for(work: int, requested: int | str | None = "auto") -> int | None:
    """The thread count for a job of ``work`` multiply-adds (None: leave torch's setting).

    ``requested`` is the estimator's ``threads``: ``"auto"`` (one thread below
    :data:`SMALL_GEMM`, torch's setting above), or an explicit count.
    """
    if requested not in ("auto", None):
        return int(requested)
    return 1 if work < SMALL_GEMM else None


@contextmanager
def torch_threads(n: int | None, device: torch.device | None = None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads on the CPU (None or a GPU: unchanged),
    then restore the previous setting."""
    if n is None or (device is not None and device.type != "cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
