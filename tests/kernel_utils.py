"""Shared helpers of the Triton kernel tests: device, tolerances, assert helper, oracles.

Not a conftest (tests/conftest.py belongs to the whole suite). Kernel tests run on a CUDA
GPU when there is one, else on the CPU under ``TRITON_INTERPRET=1``, which must be set
before Triton is imported, so by whoever starts the test session::

    TRITON_INTERPRET=1 python -m pytest tests/test_kernels.py
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="the Triton kernels need the triton package")

from revml.model import make_activation
from revml.ops import launch

HAS_CUDA = torch.cuda.is_available()
#: Where kernel tests put their tensors: the GPU if any (interpreted or not), else the CPU.
DEVICE = torch.device("cuda") if HAS_CUDA else torch.device("cpu")
INTERPRETED = launch.INTERPRETED

#: Module-level ``pytestmark`` entry of every kernel test file.
requires_kernel_device = pytest.mark.skipif(
    not (HAS_CUDA or INTERPRETED),
    reason="Triton kernels need a CUDA GPU, or TRITON_INTERPRET=1 set before Triton is "
    "imported to run them on the CPU: TRITON_INTERPRET=1 python -m pytest "
    "tests/test_kernels.py",
)

#: rtol of every check against the float64 oracle: one rounding of the fp32 result
#: (FlagGems' RESOLUTION[torch.float32]).
RESOLUTION = {torch.float32: 1.3e-6}

#: Absolute error allowed per term of a length-K reduction, for operands of unit scale.
#: Each fp32 addition rounds a partial sum of size O(1) by at most 2**-24 of it, so the
#: error grows at most linearly in K (Higham's gamma_K bound); 2**-22 leaves a factor 4
#: for partial sums above 1. "tf32" is tl.dot's TF32 mode (GPU only), which first rounds
#: each operand to 10 mantissa bits (2**-11 relative).
ATOL_PER_TERM = {torch.float32: 2.0**-22, "tf32": 2.0**-10}


def tolerance(
    width: int, scale: float = 1.0, dtype: torch.dtype | str = torch.float32
) -> dict[str, float]:
    """``rtol`` / ``atol`` for a result from a reduction of ``width`` terms, multiplied
    downstream by factors of size ``scale`` (atol scaled by the reduction width)."""
    rtol = RESOLUTION[torch.float32] if dtype == "tf32" else RESOLUTION[dtype]
    return {"rtol": rtol, "atol": ATOL_PER_TERM[dtype] * width * scale}


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, *, rtol: float, atol: float, name: str = "tensor"
) -> None:
    """``|actual - expected| <= atol + rtol * |expected|`` elementwise, with a verbose report.

    NaN or inf in ``actual`` fails unless ``expected`` has the same value there. The message
    gives the mismatch count, the max (with its index and both values) and mean absolute
    errors, and the NaN / inf counts of both tensors.
    """
    assert actual.shape == expected.shape, (
        f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    )
    got = actual.detach().to("cpu", torch.float64)
    want = expected.detach().to("cpu", torch.float64)
    same_nonfinite = (got == want) | (got.isnan() & want.isnan())
    finite = got.isfinite() & want.isfinite()
    err = torch.where(finite, (got - want).abs(), torch.zeros_like(got))
    bad = torch.where(finite, err > atol + rtol * want.abs(), ~same_nonfinite)
    if not bad.any():
        return
    idx = int(torch.where(finite, err, torch.full_like(err, -1.0)).argmax())
    where = tuple(int(i) for i in torch.unravel_index(torch.tensor(idx), got.shape))
    first_bad = tuple(int(i) for i in bad.nonzero()[0])
    raise AssertionError(
        f"{name}: {int(bad.sum())} of {bad.numel()} elements differ beyond atol={atol:.3g}, "
        f"rtol={rtol:.3g} (first at {first_bad}: {got[first_bad].item()!r} vs "
        f"{want[first_bad].item()!r}); max abs error {err.max().item():.3g} at {where} "
        f"({got[where].item()!r} vs {want[where].item()!r}); mean abs error "
        f"{err.mean().item():.3g}; actual has {int(got.isnan().sum())} NaN and "
        f"{int(got.isinf().sum())} inf, expected {int(want.isnan().sum())} NaN and "
        f"{int(want.isinf().sum())} inf"
    )


def assert_bit_equal(actual: torch.Tensor, expected: torch.Tensor, name: str = "tensor"):
    """Exact equality, NaN payloads aside; reports how many elements differ."""
    same = (actual == expected) | (actual.isnan() & expected.isnan())
    assert same.all(), f"{name}: {int((~same).sum())} of {same.numel()} elements changed"


def generator(*key: object) -> torch.Generator:
    """A CPU generator seeded from the test's parameters: fresh inputs per case,
    reproducible across runs (``hash`` of strings is salted per process, so not used)."""
    seed = 0
    for part in map(str, key):
        for ch in part:
            seed = (seed * 131 + ord(ch)) % (2**61 - 1)
    return torch.Generator().manual_seed(seed)


def linear_params(
    n_in: int, n_out: int, gen: torch.Generator, bias: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fp32 (weight, bias) on the CPU with nn.Linear's init scale (unit-scale outputs)."""
    bound = n_in**-0.5
    weight = (torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound
    b = (torch.rand(n_out, generator=gen) * 2 - 1) * bound if bias else None
    return weight, b


def activation64(name: str, slope: float):
    """The activation of revml.model (the module the reference runs), for float64 oracles."""
    return make_activation(name, slope)


def poison(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A buffer on DEVICE whose every element is invalid until a kernel writes it."""
    fill = float("nan") if dtype.is_floating_point else 127
    return torch.full(shape, fill, dtype=dtype, device=DEVICE)


def to_device(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Contiguous copies on DEVICE (copies even there, so in-place kernels leave the
    CPU originals intact for the oracle)."""
    return [None if t is None else t.to(DEVICE, copy=True).contiguous() for t in tensors]
