"""Launchers of the kernels in :mod:`revml.kernels`: allocate, pick tiles, launch.

Each launcher takes contiguous fp32 tensors on one device (``rows`` int64, ``miss`` bool)
and optional preallocated outputs (the tests pass NaN-filled ones to prove every element
is written). Kernels are launched through :func:`wrap_triton` so that ``torch.compile``
traces them inside the ``revml::`` custom op. Pointers a kernel specialisation never reads
get the (read-only) weight as a placeholder, never a tensor the kernel writes, so that
compile-time mutation analysis never sees a written tensor aliased.

Tile sizes are placeholders: there was no GPU to tune on, so they are the smallest tiles
``tl.dot`` accepts (16) grown to the problem up to 64, which keeps the interpreter (one
NumPy call per tile op, so fewer, larger tiles are faster) quick and an fp32 64x64
accumulator at 32 registers per thread with 4 warps. Tune them on a GPU (and consider
``triton.autotune``) before quoting any timing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import triton
from torch.library import wrap_triton as _torch_wrap_triton
from triton.runtime.jit import JITFunction

from revml.kernels.activations import LEAKY_RELU, RELU
from revml.kernels.input_update import input_update_kernel
from revml.kernels.linear_backward import linear_backward_kernel
from revml.kernels.linear_forward import linear_forward_kernel
from revml.kernels.output_loss import output_loss_kernel

#: True when TRITON_INTERPRET=1 was set before Triton was imported: ``@triton.jit`` then
#: returns interpreted kernels that run on CPU tensors.
INTERPRETED = not isinstance(linear_forward_kernel, JITFunction)

# Placeholder tile bounds (see the module docstring): tl.dot's minimum and a cap.
MIN_BLOCK = 16
MAX_BLOCK = 64
# The spherical term's tile spans the whole code width up to this many features, so the
# norm needs no second pass over the code; wider codes loop over the row instead. The
# batch tile then shrinks to keep the fp32 accumulator at MAX_BLOCK**2 elements.
MAX_CODE_BLOCK = 256


def wrap_triton(kernel: Callable) -> Callable:
    """:func:`torch.library.wrap_triton`, passing interpreted kernels through unchanged.

    torch releases before pytorch/pytorch#185597 (2.11 among them) reject the
    ``InterpretedFunction`` that TRITON_INTERPRET=1 gives (pytorch/pytorch#152868); it can
    only run eagerly anyway. The name is kept so that ``triton_op`` still finds the
    kernels by scanning the launchers' source.
    """
    return kernel if INTERPRETED else _torch_wrap_triton(kernel)


def _empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # Every buffer a launcher allocates comes from here, so a test can fill them with NaN
    # and prove that the kernels write every element they later read.
    return torch.empty(shape, dtype=dtype, device=device)


def _block(n: int, cap: int = MAX_BLOCK) -> int:
    return max(MIN_BLOCK, min(cap, triton.next_power_of_2(n)))


def _saves_mask(activation: int) -> bool:
    return activation in (RELU.value, LEAKY_RELU.value)


def _as_int32_bits(value: int) -> int:
    """The low 32 bits of ``value`` as a signed int32 (what the kernels' hash reads)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass(frozen=True)
class Dropout:
    """Input dropout of one step, as the kernels take it (see :mod:`revml.kernels.rng`)."""

    rows: torch.Tensor  # (B,) int64 global sample indices
    seed_lo: int
    seed_hi: int
    step: int
    threshold: int  # revml.reference.dropout_threshold(p)
    keep_scale: float  # revml.reference.dropout_scale: 1 / (1 - p), or 1 (hiding)

    @classmethod
    def make(
        cls, rows: torch.Tensor, seed: int, step: int, threshold: int, keep_scale: float
    ) -> Dropout:
        return cls(
            rows,
            _as_int32_bits(seed),
            _as_int32_bits(seed >> 32),
            _as_int32_bits(step),
            threshold,
            float(keep_scale),
        )

    def args(self) -> tuple:
        return (self.rows, self.seed_lo, self.seed_hi, self.step, self.threshold, self.keep_scale)


def linear_forward(
    a: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: int,
    slope: float,
    *,
    dropout: Dropout | None = None,
    out: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    input_precision: str = "ieee",
    blocks: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``act(dropout(a) @ weight.T + bias)`` (M, N) and the int8 mask ``z > 0`` that
    ReLU / LeakyReLU backward needs (``None`` for the other activations)."""
    M, K = a.shape
    N = weight.shape[0]
    save_mask = _saves_mask(activation)
    if out is None:
        out = _empty((M, N), torch.float32, a.device)
    if save_mask and mask is None:
        mask = _empty((M, N), torch.int8, a.device)
    bm, bn, bk = blocks or (_block(M), _block(N), _block(K))
    drop_args = dropout.args() if dropout is not None else (weight, 0, 0, 0, 0, 1.0)
    grid = (triton.cdiv(M, bm), triton.cdiv(N, bn))
    wrap_triton(linear_forward_kernel)[grid](
        a,
        weight,
        weight if bias is None else bias,
        out,
        mask if save_mask else weight,
        *drop_args,
        slope,
        M,
        N,
        K,
        ACTIVATION=activation,
        HAS_BIAS=bias is not None,
        SAVE_MASK=save_mask,
        DROPOUT=dropout is not None,
        INPUT_PRECISION=input_precision,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
    )
    return out, (mask if save_mask else None)


def output_loss(
    a: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: int,
    slope: float,
    x: torch.Tensor,
    miss: torch.Tensor,
    missing_weight: float,
    *,
    dz: torch.Tensor | None = None,
    dr: torch.Tensor | None = None,
    input_precision: str = "ieee",
    blocks: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Last layer with the loss gradient: ``(dz, dr, sum_j w_j (r_j - x_j)^2)``.

    ``dr = 2/D * w * (r - x)`` is ``dL/dr``, ``dz = dr * act'(z)``; the last value is the
    per-sample weighted squared error (B,), not yet divided by ``D``.
    """
    M, K = a.shape
    N = weight.shape[0]
    if dz is None:
        dz = _empty((M, N), torch.float32, a.device)
    if dr is None:
        dr = _empty((M, N), torch.float32, a.device)
    bm, bn, bk = blocks or (_block(M), _block(N), _block(K))
    grid = (triton.cdiv(M, bm), triton.cdiv(N, bn))
    partial = _empty((M, grid[1]), torch.float32, a.device)
    wrap_triton(output_loss_kernel)[grid](
        a,
        weight,
        weight if bias is None else bias,
        x,
        miss.view(torch.uint8),
        dz,
        dr,
        partial,
        slope,
        2.0 / N,
        missing_weight,
        M,
        N,
        K,
        ACTIVATION=activation,
        HAS_BIAS=bias is not None,
        INPUT_PRECISION=input_precision,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
    )
    return dz, dr, partial.sum(dim=1)


def linear_backward(
    grad: torch.Tensor,
    weight: torch.Tensor,
    activation: int,
    slope: float,
    saved: torch.Tensor,
    *,
    code: torch.Tensor | None = None,
    sphere_weight: float = 0.0,
    radius: float = 1.0,
    out: torch.Tensor | None = None,
    input_precision: str = "ieee",
    blocks: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(grad @ weight [+ spherical gradient at code]) * act'`` (M, K), and with ``code``
    the per-sample ``sum(code^2)`` (M,) for the reported loss.

    ``activation`` / ``slope`` / ``saved`` belong to the previous layer (whose output is
    this layer's input); ``saved`` is its int8 mask or fp32 output (see
    :mod:`revml.kernels.activations`), any tensor of the right size for identity.
    """
    M, N = grad.shape
    K = weight.shape[1]
    sphere = code is not None
    if out is None:
        out = _empty((M, K), torch.float32, grad.device)
    sumsq = _empty((M,), torch.float32, grad.device) if sphere else None
    if blocks is None:
        bk = _block(K, MAX_CODE_BLOCK if sphere else MAX_BLOCK)
        blocks = (_block(M, max(MIN_BLOCK, MAX_BLOCK**2 // bk)), _block(N), bk)
    bm, bn, bk = blocks
    grid = (triton.cdiv(M, bm), triton.cdiv(K, bk))
    wrap_triton(linear_backward_kernel)[grid](
        grad,
        weight,
        saved,
        code if sphere else grad,
        sumsq if sphere else grad,
        out,
        slope,
        sphere_weight,
        radius,
        M,
        N,
        K,
        ACTIVATION=activation,
        SPHERE=sphere,
        CODE_IN_TILE=bk >= K,
        INPUT_PRECISION=input_precision,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
    )
    return out, sumsq


def input_update(
    grad: torch.Tensor,
    weight: torch.Tensor,
    dr: torch.Tensor,
    x: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    miss: torch.Tensor,
    *,
    beta1: float,
    beta2: float,
    step_size: float,
    bias2_sqrt: float,
    eps: float,
    dropout: Dropout | None = None,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
    input_precision: str = "ieee",
    blocks: tuple[int, int, int] | None = None,
) -> None:
    """``dL/dx = (grad @ weight) * keep / (1 - p) - dr``, then masked Adam and the clamp,
    in place on the missing entries of ``x``, ``m``, ``v``."""
    M, N = grad.shape
    K = weight.shape[1]
    bm, bn, bk = blocks or (_block(M), _block(N), _block(K))
    drop_args = dropout.args() if dropout is not None else (weight, 0, 0, 0, 0, 1.0)
    grid = (triton.cdiv(M, bm), triton.cdiv(K, bk))
    wrap_triton(input_update_kernel)[grid](
        grad,
        weight,
        dr,
        x,
        m,
        v,
        miss.view(torch.uint8),
        drop_args[0],
        weight if lo is None else lo,
        weight if hi is None else hi,
        *drop_args[1:],
        beta1,
        beta2,
        step_size,
        bias2_sqrt,
        eps,
        M,
        N,
        K,
        DROPOUT=dropout is not None,
        HAS_LO=lo is not None,
        HAS_HI=hi is not None,
        INPUT_PRECISION=input_precision,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
    )
