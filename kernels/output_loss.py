"""Last layer fused with the gradient of the reconstruction loss.

For the output ``r = act(z)`` of the last layer and the target ``x`` (the current batch),
the loss term ``1/D * sum_j w_j (r_j - x_j)^2`` has the elementwise gradient
``dr = 2/D * w * (r - x)``, so it needs no row reduction and is computed in the epilogue of
the layer's matmul, as is ``dz = dr * act'(z)``. ``-dr`` is also the gradient of the loss
through its target ``x`` (the "direct term"), which the first layer's backward adds.
"""

import triton
import triton.language as tl
from revml.kernels.activations import LEAKY_RELU, RELU, activate, activation_grad
from revml.kernels.linear_forward import linear_tile


@triton.jit
def output_loss_kernel(
    a_ptr,
    w_ptr,
    b_ptr,
    x_ptr,
    miss_ptr,
    dz_ptr,
    dr_ptr,
    loss_ptr,
    slope,
    grad_scale,
    missing_weight,
    M,
    N,
    K,
    ACTIVATION: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Last layer and loss gradient; grid (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)), N = D.

    Pointers (all contiguous, row-major):

    - ``a_ptr``: (M, K) fp32, the layer input. ``w_ptr``: (N, K) fp32.
      ``b_ptr``: (N,) fp32, read only if ``HAS_BIAS``.
    - ``x_ptr``: (M, N) fp32, the target (the batch before this step's update).
    - ``miss_ptr``: (M, N) uint8 (a bool tensor viewed as bytes), nonzero where missing.
    - ``dz_ptr``: (M, N) fp32, written: ``dL/dz = dr * act'(z)``.
    - ``dr_ptr``: (M, N) fp32, written: ``dL/dr = grad_scale * w * (r - x)``.
    - ``loss_ptr``: (M, cdiv(N, BLOCK_N)) fp32, written: per-tile partial sums of
      ``w * (r - x)^2`` (only reported, so summed by the launcher).

    Scalars, cast to fp32 here: ``slope`` (LeakyReLU), ``grad_scale`` = 2 / D,
    ``missing_weight``.
    """
    # Inductor may pass Python floats as fp64; keep the arithmetic in fp32.
    slope = tl.cast(slope, tl.float32)
    grad_scale = tl.cast(grad_scale, tl.float32)
    missing_weight = tl.cast(missing_weight, tl.float32)
    pid_n = tl.program_id(1)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    z = linear_tile(
        a_ptr,
        w_ptr,
        b_ptr,
        a_ptr,
        0,
        0,
        0,
        0,
        1.0,
        offs_m,
        offs_n,
        M,
        N,
        K,
        HAS_BIAS,
        False,
        INPUT_PRECISION,
        BLOCK_M,
        BLOCK_N,
        BLOCK_K,
    )
    r = activate(z, slope, ACTIVATION)
    m_ok = offs_m < M
    ok = m_ok[:, None] & (offs_n < N)[None, :]
    off = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
    x = tl.load(x_ptr + off, mask=ok, other=0.0)
    miss = tl.load(miss_ptr + off, mask=ok, other=0) != 0
    w = tl.where(miss, missing_weight, 1.0)
    diff = tl.where(ok, r - x, 0.0)
    dr = grad_scale * w * diff
    if (ACTIVATION == RELU) or (ACTIVATION == LEAKY_RELU):
        dz = activation_grad(dr, (z > 0.0).to(tl.int8), slope, ACTIVATION)
    else:
        dz = activation_grad(dr, r, slope, ACTIVATION)
    tl.store(dz_ptr + off, dz, mask=ok)
    tl.store(dr_ptr + off, dr, mask=ok)
    partial = tl.sum(w * diff * diff, axis=1)
    tl.store(loss_ptr + offs_m.to(tl.int64) * tl.num_programs(1) + pid_n, partial, mask=m_ok)
