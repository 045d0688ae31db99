"""Reverse-step benchmark: reference (eager), compile and triton side by side.

For an MLP autoencoder (default the MNIST-sized 784-512-256-64, mirrored) and several
batch sizes N, times one full reverse step (forward, input-only backward, masked Adam)
per provider and reports ms/step, sample-steps/s, achieved TFLOP/s and GB/s, the fraction
of the roofline and peak memory. The ceilings are measured on the same device in the same
run (a large GEMM and a large copy), not taken from a datasheet.

Counting, per sample-step, with layer widths w_0..w_L:
    FLOPs  = 4 * sum(w_i * w_{i+1})      forward GEMMs + input-only backward GEMMs
    bytes  = 25 * w_0 + weights / N      read x, m, v (fp32) and the mask (1 B), write
                                         x, m, v; weights read once per step
The roofline time is max(FLOPs / peak FLOP/s, bytes / peak B/s).

    python benchmarks/bench_reverse_step.py                    # CPU: reference vs compile
    python benchmarks/bench_reverse_step.py --n 1024,16384,65536,262144   # on a GPU

Also measures the end-to-end CPU figure of the MNIST-sized default imputer when asked
(--mnist-digits N): imputing N test-sized digits with ReverseImputer's defaults.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from revml.backends import make_step_fn, resolve_backend
from revml.experiments.mnist import environment
from revml.model import MLPAutoencoder
from revml.reference import ReverseConfig


@dataclass(frozen=True)
class Case:
    provider: str
    n: int
    widths: tuple[int, ...]
    dropout: float
    device: str


@dataclass
class Result:
    provider: str
    n: int
    widths: tuple[int, ...]
    dropout: float
    ms_median: float
    ms_p20: float
    ms_p80: float
    sample_steps_per_s: float
    tflops: float
    gbps: float
    roofline_fraction: float
    peak_mem_mb: float
    note: str = ""


def step_flops_bytes(widths: tuple[int, ...], n: int) -> tuple[float, float]:
    """FLOPs and minimum bytes of one reverse step over ``n`` samples (module docstring)."""
    layer_sizes = list(widths) + list(widths[-2::-1])
    gemm = sum(a * b for a, b in itertools.pairwise(layer_sizes))
    flops = 4.0 * gemm * n
    bytes_ = 25.0 * widths[0] * n + 4.0 * gemm
    return flops, bytes_


def _time(fn, device: torch.device, reps: int) -> tuple[float, float, float]:
    """Median, p20 and p80 in ms."""
    if device.type == "cuda":
        import triton.testing

        q = triton.testing.do_bench(fn, quantiles=[0.5, 0.2, 0.8], warmup=25, rep=200)
        return float(q[0]), float(q[1]), float(q[2])
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    times = list(timer.blocked_autorange(min_run_time=1.0).raw_times)
    while len(times) < reps:
        times += timer.timeit(1).raw_times
    times.sort()

    def q(p):
        return 1e3 * times[min(len(times) - 1, int(p * len(times)))]

    return q(0.5), q(0.2), q(0.8)


def ceilings(device: torch.device) -> tuple[float, float]:
    """Measured peak FLOP/s (fp32 GEMM) and bytes/s (copy) on ``device``.

    The fastest of the timed repetitions (p20), not the median: a ceiling is what the
    device can do, and on a shared CPU the median is depressed by other load.
    """
    size = 4096 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    _, ms, _ = _time(lambda: a @ b, device, 10)
    flops = 2 * size**3 / (ms * 1e-3)
    n = (1 << 28) if device.type == "cuda" else (1 << 25)
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    _, ms, _ = _time(lambda: dst.copy_(src), device, 10)
    bw = 2 * 4 * n / (ms * 1e-3)
    return flops, bw


def run_case(case: Case, peak_flops: float, peak_bw: float) -> Result:
    device = torch.device(case.device)
    torch.manual_seed(0)
    d = case.widths[0]
    ae = MLPAutoencoder(d, hidden=case.widths[1:-1], bottleneck=case.widths[-1])
    ae = ae.to(device).eval().requires_grad_(False)
    cfg = ReverseConfig(dropout=case.dropout, sphere_weight=0.01, radius=3.0, seed=1)
    name = resolve_backend(case.provider, ae, device)
    step_fn = make_step_fn(name, ae, cfg, device)
    x = torch.rand(case.n, d, device=device)
    miss = torch.rand(case.n, d, device=device) < 0.36
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    rows = torch.arange(case.n, device=device)
    lo = torch.zeros(d, device=device)
    hi = torch.ones(d, device=device)
    counter = [0]

    def one_step():
        counter[0] += 1
        step_fn(ae, x, miss, m, v, rows, counter[0], cfg, lo, hi)

    t = time.perf_counter()
    one_step()  # compile / autotune outside the timing
    first_s = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    med, p20, p80 = _time(one_step, device, 7)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    flops, bytes_ = step_flops_bytes(case.widths, case.n)
    roof_s = max(flops / peak_flops, bytes_ / peak_bw)
    return Result(
        case.provider,
        case.n,
        case.widths,
        case.dropout,
        med,
        p20,
        p80,
        case.n / (med * 1e-3),
        flops / (med * 1e-3) / 1e12,
        bytes_ / (med * 1e-3) / 1e9,
        roof_s / (med * 1e-3),
        peak,
        note=f"first step {first_s:.1f} s",
    )


def mnist_end_to_end(n_digits: int, device: str | None) -> dict:
    """Seconds for ReverseImputer's default transform of ``n_digits`` MNIST-shaped rows.

    Uses a default-sized autoencoder fitted briefly on random digits-shaped data: the
    timing depends on shapes and steps, not on what the weights learned.
    """
    from revml import ReverseImputer, masks

    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2000, 784, generator=gen) > 0.8).float().numpy()
    imp = ReverseImputer(random_state=0, epochs=1, device=device).fit(x)
    test = (torch.rand(n_digits, 784, generator=gen) > 0.8).float().numpy()
    damaged = masks.apply(test, masks.row_band(n_digits, seed=0))
    t = time.perf_counter()
    det = imp.transform_details(damaged)
    sec = time.perf_counter() - t
    return {
        "n_digits": n_digits,
        "seconds": sec,
        "backend": det.backend,
        "n_steps": imp.n_steps,
        "autoencoder": imp.autoencoder_.config(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--n",
        default=None,
        help="comma-separated batch sizes "
        "(default: 1024,16384,65536,262144 on a GPU, 1024,4096 on the CPU)",
    )
    ap.add_argument(
        "--widths", default="784,512,256,64", help="encoder widths, input first (decoder mirrors)"
    )
    ap.add_argument(
        "--providers",
        default=None,
        help="comma-separated (default: reference,compile[,triton on a GPU])",
    )
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--mnist-digits",
        type=int,
        default=0,
        help="also time the default imputer on this many MNIST-shaped digits",
    )
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    ns = [
        int(v)
        for v in (args.n or ("1024,16384,65536,262144" if on_gpu else "1024,4096")).split(",")
    ]
    providers = (
        args.providers or ("reference,compile,triton" if on_gpu else "reference,compile")
    ).split(",")
    widths = tuple(int(w) for w in args.widths.split(","))
    peak_flops, peak_bw = ceilings(device)
    env = environment()
    print(
        f"device: {env['device']}  torch {env['torch']}  triton {env['triton']}  "
        f"rev {env['git_revision']}"
    )
    print(
        f"measured ceilings: {peak_flops / 1e12:.2f} TFLOP/s fp32 GEMM, "
        f"{peak_bw / 1e9:.1f} GB/s copy"
    )
    header = (
        f"{'provider':<10}{'N':>8}{'ms/step':>10}{'p20':>8}{'p80':>8}"
        f"{'Msample-steps/s':>17}{'TFLOP/s':>9}{'GB/s':>8}{'roofline':>10}{'peak MB':>9}"
    )
    print(header)
    results: list[Result] = []
    for n in ns:
        for provider in providers:
            r = run_case(Case(provider, n, widths, args.dropout, str(device)), peak_flops, peak_bw)
            results.append(r)
            print(
                f"{r.provider:<10}{r.n:>8}{r.ms_median:>10.2f}{r.ms_p20:>8.2f}"
                f"{r.ms_p80:>8.2f}{r.sample_steps_per_s / 1e6:>17.3f}{r.tflops:>9.3f}"
                f"{r.gbps:>8.1f}{r.roofline_fraction:>10.1%}{r.peak_mem_mb:>9.0f}  {r.note}",
                flush=True,
            )
    ratios = {}
    for n in ns:
        by = {r.provider: r.ms_median for r in results if r.n == n}
        for p in providers:
            if p != "reference" and p in by:
                ratios[f"{p}_vs_reference_N{n}"] = by["reference"] / by[p]
        if "triton" in by and "compile" in by:
            ratios[f"triton_vs_compile_N{n}"] = by["compile"] / by["triton"]
    for k, val in ratios.items():
        print(f"speed-up {k}: {val:.2f}x")
    e2e = None
    if args.mnist_digits:
        e2e = mnist_end_to_end(args.mnist_digits, args.device)
        print(
            f"default imputer, {e2e['n_digits']} MNIST-shaped digits, {e2e['n_steps']} "
            f"steps, backend {e2e['backend']}: {e2e['seconds']:.1f} s"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "gpu" if on_gpu else "cpu"
    path = out / f"reverse_step_{tag}.json"
    path.write_text(
        json.dumps(
            {
                "environment": env,
                "ceilings": {"fp32_gemm_flops": peak_flops, "copy_bytes_per_s": peak_bw},
                "results": [asdict(r) for r in results],
                "ratios": ratios,
                "mnist_end_to_end": e2e,
            },
            indent=2,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
