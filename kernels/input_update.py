"""First layer's backward fused with the loss's direct term and the masked Adam update.

``dL/dx = (G_0 @ W_0) * keep / (1 - p) - dr``: the backprop term through the first layer
(and the input dropout, whose mask is recomputed from the hash rather than saved) plus the
direct term of the target ``x`` in the loss (``dr`` from :mod:`.output_loss`). The gradient
never reaches memory: the epilogue applies Adam and the clamp and writes ``x``, ``m``, ``v``
in place, on missing entries only.
"""

import triton
import triton.language as tl
from revml.kernels.adam import adam_update
from revml.kernels.linear_backward import grad_input_tile
from revml.kernels.rng import column_keys, dropout_keep, row_keys


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step", "threshold"])
def input_update_kernel(
    g_ptr,
    w_ptr,
    dr_ptr,
    x_ptr,
    m_ptr,
    v_ptr,
    miss_ptr,
    rows_ptr,
    lo_ptr,
    hi_ptr,
    seed_lo,
    seed_hi,
    step,
    threshold,
    keep_scale,
    beta1,
    beta2,
    step_size,
    bias2_sqrt,
    eps,
    M,
    N,
    K,
    DROPOUT: tl.constexpr,
    HAS_LO: tl.constexpr,
    HAS_HI: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Gradient w.r.t. ``x`` and masked Adam in place; grid (cdiv(M, BLOCK_M),
    cdiv(K, BLOCK_K)), K = D.

    Pointers (all contiguous, row-major):

    - ``g_ptr``: (M, N) fp32, ``dL/dz_0``. ``w_ptr``: (N, K) fp32, the first weight.
    - ``dr_ptr``: (M, K) fp32, ``dL/dr`` of the output (the direct term is ``-dr``).
    - ``x_ptr``, ``m_ptr``, ``v_ptr``: (M, K) fp32, read, and written where missing only.
    - ``miss_ptr``: (M, K) uint8 (a bool tensor viewed as bytes), nonzero where missing.
    - ``rows_ptr``: (M,) int64 global sample indices, read only if ``DROPOUT``.
    - ``lo_ptr``, ``hi_ptr``: (K,) fp32 clamp bounds, read only if ``HAS_LO`` / ``HAS_HI``.

    Scalars: ``seed_lo``, ``seed_hi``, ``step``, ``threshold`` int32 (dropout hash, see
    :mod:`revml.kernels.rng`); ``keep_scale`` = 1 / (1 - p) and the Adam constants of
    :func:`revml.kernels.adam.adam_update`, cast to fp32 here.
    """
    # Inductor may pass Python floats as fp64; keep the arithmetic in fp32.
    keep_scale = tl.cast(keep_scale, tl.float32)
    beta1 = tl.cast(beta1, tl.float32)
    beta2 = tl.cast(beta2, tl.float32)
    step_size = tl.cast(step_size, tl.float32)
    bias2_sqrt = tl.cast(bias2_sqrt, tl.float32)
    eps = tl.cast(eps, tl.float32)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    grad = grad_input_tile(
        g_ptr, w_ptr, offs_m, offs_k, M, N, K, INPUT_PRECISION, BLOCK_M, BLOCK_N, BLOCK_K
    )
    m_ok = offs_m < M
    k_ok = offs_k < K
    ok = m_ok[:, None] & k_ok[None, :]
    if DROPOUT:
        rows = tl.load(rows_ptr + offs_m, mask=m_ok, other=0)
        keep = dropout_keep(row_keys(rows, seed_lo, seed_hi, step), column_keys(offs_k), threshold)
        grad = tl.where(keep, grad * keep_scale, 0.0)
    off = offs_m.to(tl.int64)[:, None] * K + offs_k[None, :]
    grad -= tl.load(dr_ptr + off, mask=ok, other=0.0)
    miss = ok & (tl.load(miss_ptr + off, mask=ok, other=0) != 0)
    x = tl.load(x_ptr + off, mask=miss, other=0.0)
    m = tl.load(m_ptr + off, mask=miss, other=0.0)
    v = tl.load(v_ptr + off, mask=miss, other=0.0)
    x, m, v = adam_update(x, m, v, grad, beta1, beta2, step_size, bias2_sqrt, eps)
    # NaN-propagating, as torch.maximum / torch.minimum in the reference.
    if HAS_LO:
        x = tl.maximum(
            x,
            tl.load(lo_ptr + offs_k, mask=k_ok, other=0.0)[None, :],
            propagate_nan=tl.PropagateNan.ALL,
        )
    if HAS_HI:
        x = tl.minimum(
            x,
            tl.load(hi_ptr + offs_k, mask=k_ok, other=0.0)[None, :],
            propagate_nan=tl.PropagateNan.ALL,
        )
    tl.store(x_ptr + off, x, mask=miss)
    tl.store(m_ptr + off, m, mask=miss)
    tl.store(v_ptr + off, v, mask=miss)
