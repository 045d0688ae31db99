"""Fused linear layer forward: ``act(x @ W.T + b)``, with optional input dropout.

Only the input gradient is ever needed downstream, so the forward pass saves exactly what
:func:`revml.kernels.activations.activation_grad` reads: the int8 mask ``z > 0`` for
ReLU / LeakyReLU (the float output is still written, as the next layer's input) and nothing
extra for the other activations.
"""

import triton
import triton.language as tl
from revml.kernels.activations import activate
from revml.kernels.rng import column_keys, dropout_keep, row_keys


@triton.jit
def linear_tile(
    a_ptr,
    w_ptr,
    b_ptr,
    rows_ptr,
    seed_lo,
    seed_hi,
    step,
    threshold,
    keep_scale,
    offs_m,
    offs_n,
    M,
    N,
    K,
    HAS_BIAS: tl.constexpr,
    DROPOUT: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Pre-activation tile ``z = dropout(a) @ W.T + b`` (BLOCK_M, BLOCK_N), fp32.

    ``a``: (M, K) fp32 row-major; ``W``: (N, K) fp32 row-major; ``b``: (N,) fp32. With
    ``DROPOUT`` the keep mask of :mod:`revml.kernels.rng` is applied to ``a`` as it is
    loaded and the ``1 / (1 - p)`` scale (``keep_scale``, fp32) once to the product.
    """
    m_ok = offs_m < M
    n_ok = offs_n < N
    row_off = offs_m.to(tl.int64) * K
    if DROPOUT:
        rows = tl.load(rows_ptr + offs_m, mask=m_ok, other=0)
        rkey = row_keys(rows, seed_lo, seed_hi, step)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_ok = offs_k < K
        a = tl.load(
            a_ptr + row_off[:, None] + offs_k[None, :],
            mask=m_ok[:, None] & k_ok[None, :],
            other=0.0,
        )
        if DROPOUT:
            a = tl.where(dropout_keep(rkey, column_keys(offs_k), threshold), a, 0.0)
        # W.T tile (BLOCK_K, BLOCK_N) read straight from row-major W.
        wt = tl.load(
            w_ptr + offs_n[None, :].to(tl.int64) * K + offs_k[:, None],
            mask=k_ok[:, None] & n_ok[None, :],
            other=0.0,
        )
        acc = tl.dot(a, wt, acc, input_precision=INPUT_PRECISION)
    if DROPOUT:
        acc = acc * keep_scale
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=n_ok, other=0.0)[None, :]
    return acc


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step", "threshold"])
def linear_forward_kernel(
    a_ptr,
    w_ptr,
    b_ptr,
    out_ptr,
    mask_ptr,
    rows_ptr,
    seed_lo,
    seed_hi,
    step,
    threshold,
    keep_scale,
    slope,
    M,
    N,
    K,
    ACTIVATION: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SAVE_MASK: tl.constexpr,
    DROPOUT: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """One hidden layer: ``out = act(dropout(a) @ W.T + b)``; grid (cdiv(M, BLOCK_M),
    cdiv(N, BLOCK_N)).

    Pointers (all contiguous, row-major):

    - ``a_ptr``: (M, K) fp32, the layer input (the batch ``x`` for the first layer).
    - ``w_ptr``: (N, K) fp32. ``b_ptr``: (N,) fp32, read only if ``HAS_BIAS``.
    - ``out_ptr``: (M, N) fp32, written: ``act(z)``.
    - ``mask_ptr``: (M, N) int8, written only if ``SAVE_MASK``: ``z > 0``.
    - ``rows_ptr``: (M,) int64 global sample indices, read only if ``DROPOUT``.

    Scalars: ``seed_lo``, ``seed_hi``, ``step``, ``threshold`` int32 (dropout hash, see
    :mod:`revml.kernels.rng`); ``keep_scale`` = 1 / (1 - p) and ``slope`` (LeakyReLU) are
    cast to fp32 here.
    """
    # Inductor may pass Python floats as fp64; keep the arithmetic in fp32.
    keep_scale = tl.cast(keep_scale, tl.float32)
    slope = tl.cast(slope, tl.float32)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    z = linear_tile(
        a_ptr,
        w_ptr,
        b_ptr,
        rows_ptr,
        seed_lo,
        seed_hi,
        step,
        threshold,
        keep_scale,
        offs_m,
        offs_n,
        M,
        N,
        K,
        HAS_BIAS,
        DROPOUT,
        INPUT_PRECISION,
        BLOCK_M,
        BLOCK_N,
        BLOCK_K,
    )
    ok = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    out_off = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
    tl.store(out_ptr + out_off, activate(z, slope, ACTIVATION), mask=ok)
    if SAVE_MASK:
        tl.store(mask_ptr + out_off, (z > 0.0).to(tl.int8), mask=ok)
