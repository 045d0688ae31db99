"""Mixed precision: where bfloat16 is fast, and the context that runs a network in it.

``precision="bfloat16"`` runs the autoencoder's matrix products in bfloat16 with float32
accumulation (``torch.autocast``): the frozen network's forward and input-only backward in
the reverse loop, the clean and direct passes, and training's forward and backward. The
imputed values, the Adam state, the loss and everything outside the network stay float32,
and observed values are never written, so they stay bit-identical. ``"auto"`` picks
bfloat16 only where it was measured to keep accuracy and to pay: imputation (not training,
:data:`AUTO_BFLOAT16_LOOP`, :data:`AUTO_BFLOAT16`) on a CPU with fast bfloat16
(AVX512-BF16 or AMX, read at run time) for networks whose largest matrix product reaches
:data:`BF16_MIN_GEMM` multiply-adds; elsewhere float32 (GPUs included, where bfloat16 has
not been measured yet; ``precision="bfloat16"`` asks for it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

PRECISIONS = ("auto", "float32", "bfloat16")

#: Whether ``precision="auto"`` may choose bfloat16 for *training* where it is fast.
#: Decided on the validation digits of benchmarks/sweep_precision.py (README, "Mixed
#: precision"): a first run (one training seed) had bfloat16 ahead (+0.11 and +0.24
#: points), but four training seeds put it 0.06 (rows) and 0.19 points (centred square)
#: behind float32, outside the 0.05-point bar: training stays float32.
AUTO_BFLOAT16 = False
#: Whether ``precision="auto"`` may choose bfloat16 for *imputation* (the reverse loop, the
#: clean and direct passes) of a float32-trained network where it is fast. Decided on the
#: validation digits of benchmarks/sweep_loop.py: on one network per training seed (four)
#: and the comparison table's four damages, the loop in bfloat16 matched float32's
#: missing-pixel accuracy and RMSE to the fourth decimal, in half the time.
AUTO_BFLOAT16_LOOP = True
#: ... for networks whose largest product (rows x widths of a batch) has at least this many
#: multiply-adds: MNIST's (2e8) fit 1.6x and imputed 1.8x faster in bfloat16, while the
#: tables' (below 1e6) ran 1.4x slower (the casts cost more than the products gain).
BF16_MIN_GEMM = 20_000_000
#: Imputation decides on the network's largest product over this many rows (training's
#: batch on MNIST), whatever the rows a call imputes: a result must not depend on chunking.
DECIDING_ROWS = 256


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` has bfloat16 matrix units: tensor cores (compute capability >= 8)
    or, on an x86 CPU, AMX or AVX512-BF16 instructions (read at run time, never assumed)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    flags = _cpu_flags()
    if flags:
        return bool({"amx_bf16", "avx512_bf16"} & flags)
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # non-Linux x86
    return bool(probe()) if probe is not None else False


def resolve(
    precision: str,
    device: torch.device,
    work: int = 0,
    *,
    stage: str = "train",
    backend: str = "auto",
) -> str:
    """``"float32"`` or ``"bfloat16"`` for the parameter ``precision`` on ``device``, for a
    network whose largest matrix product has ``work`` multiply-adds, in ``stage``
    (``"train"`` or ``"loop"``: imputation) on ``backend`` (the Triton kernels run float32,
    so ``"auto"`` keeps it for them)."""
    if precision != "auto":
        return precision
    if stage not in ("train", "loop"):
        raise ValueError(f"stage must be 'train' or 'loop', got {stage!r}")
    allowed = AUTO_BFLOAT16_LOOP if stage == "loop" else AUTO_BFLOAT16
    pays = (
        device.type == "cpu"
        and backend != "triton"
        and work >= BF16_MIN_GEMM
        and fast_bfloat16(device)
    )
    return "bfloat16" if allowed and pays else "float32"


@contextlib.contextmanager
def compute(precision: str, device_type: str) -> Iterator[None]:
    """Run the block's network in ``precision`` (a resolved name) on ``device_type``."""
    if precision == "bfloat16":
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
    else:
        yield
