"""Training-update benchmark: autograd, the hand-written update in torch and in NumPy.

One masked-MSE Adam update of an MLP autoencoder at the sizes tables train (and a small
MNIST fit's), three providers side by side in one run on one thread (torch's and NumPy's
BLAS alike, as a fit of such a network runs):

- ``autograd``: the module's forward, ``loss.backward()`` and torch's fused Adam (the path
  of larger networks and of a wrapped, distributed module);
- ``torch_step``: :class:`revml.training_step.MLPStep` with torch's operations (the path off
  the CPU);
- ``numpy_step``: :class:`revml.training_step.HostMLPStep` (the CPU's path).

Each provider starts from the same weights and runs the same batches; the table gives the
median microseconds an update (p20 / p80 over repeats of 200 updates) and the ratio to the
torch step; the JSON keeps each provider's last loss (they part by float32 rounding, which
a run of updates amplifies: ``tests/test_training_step.py`` checks the maths in float64).

    python benchmarks/bench_training_step.py

Writes ``benchmarks/results/training_step.json`` (device, threads, versions, git revision).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from revml.experiments.mnist import environment
from revml.model import MLPAutoencoder, default_architecture
from revml.threads import gemm_size, layer_widths
from revml.training_step import MLPStep

#: (name, features, batch): the batch each table's default training uses
#: (:func:`revml.training.default_train_config`).
CASES = [
    ("airquality 153 x 6", 6, 16),
    ("penguins 344 x 13 (one-hot)", 13, 16),
    ("breast cancer 569 x 30", 30, 32),
    ("1,000 x 50", 50, 32),
    ("20,000 x 27 (diamonds, one-hot)", 27, 256),
    ("10,000 x 100 (the blend's widest)", 100, 256),
    ("400 x 200", 200, 16),
    ("400 x 300", 300, 16),
    ("MNIST, 400 digits", 784, 16),
]
PROVIDERS = ("autograd", "torch_step", "numpy_step")


@dataclass
class Result:
    case: str
    provider: str
    features: int
    batch: int
    widths: list[int]
    parameters: int
    largest_product: int
    us_median: float
    us_p20: float
    us_p80: float
    final_loss: float


def _network(d: int) -> MLPAutoencoder:
    hidden, code = default_architecture(d, masked=True)
    torch.manual_seed(0)
    return MLPAutoencoder(d, hidden, code, output_activation="identity")


def _updater(provider: str, net: MLPAutoencoder, lr: float):
    """A function ``(inp, target, observed) -> loss`` taking one update with ``provider``."""
    if provider == "autograd":
        opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)

        def update(inp, target, observed):
            loss = ((net(inp) - target) ** 2 * observed).sum() / observed.sum().clamp_min(1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item()

        return update
    step = MLPStep.for_module(net, torch.float32, lr, host=provider == "numpy_step")

    def update(inp, target, observed):
        if step.host:
            inp, target, observed = inp.numpy(), target.numpy(), observed.numpy()
        return float(step.update(inp, target, observed)[0])

    return update


def run_case(name: str, d: int, batch: int, provider: str, repeats: int) -> Result:
    net = _network(d)
    gen = torch.Generator().manual_seed(1)
    n = 20 * batch
    data = torch.rand(n, d, generator=gen)
    observed = torch.rand(n, d, generator=gen) < 0.8
    hidden = torch.rand(n, d, generator=gen) < 0.3
    inputs = torch.where(hidden | ~observed, 0.0, data)
    batches = [
        (inputs[i : i + batch], data[i : i + batch], observed[i : i + batch])
        for i in range(0, n, batch)
    ]
    update = _updater(provider, net, 1e-3)
    for b in batches:  # warm-up
        update(*b)
    times = []
    loss = float("nan")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(10):
            for b in batches:
                loss = update(*b)
        times.append((time.perf_counter() - t) / (10 * len(batches)) * 1e6)
    times.sort()
    widths = layer_widths(net)
    return Result(
        name,
        provider,
        d,
        batch,
        widths,
        sum(p.numel() for p in net.parameters()),
        gemm_size(batch, widths),
        float(np.median(times)),
        times[int(0.2 * (len(times) - 1))],
        times[int(0.8 * (len(times) - 1))],
        loss,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="repeats of 200 updates a provider")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "training_step.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = []
    head = f"{'case':36s} {'provider':11s} {'us/update':>10s} {'p20-p80':>15s}"
    print(f"{head} {'vs torch step':>13s}")
    with threadpool_limits(1, user_api="blas"):
        for name, d, batch in CASES:
            rows = [run_case(name, d, batch, p, args.repeats) for p in PROVIDERS]
            ref = next(r for r in rows if r.provider == "torch_step")
            for r in rows:
                spread = f"{r.us_p20:.0f}-{r.us_p80:.0f}"
                ratio = ref.us_median / r.us_median
                line = f"{name:36s} {r.provider:11s} {r.us_median:10.1f} {spread:>15s}"
                print(f"{line} {ratio:12.2f}x")
            results.extend(rows)
    env = environment()
    env["torch_threads"] = torch.get_num_threads()
    env["blas_threads"] = 1
    env["numpy"] = np.__version__
    out = {
        "benchmark": "training_step",
        "environment": env,
        "results": [asdict(r) for r in results],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
