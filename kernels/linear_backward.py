"""Input-only backward through one linear layer, with the spherical gradient at the code.

For layer ``l`` (weight ``W_l`` (N, K)) and ``G = dL/dz_l`` (M, N), the gradient reaching
the previous layer's pre-activation is ``(G @ W_l) * act'_{l-1}``, read from what the
previous layer's forward saved. No weight gradient is ever formed.

When the layer's input is the autoencoder's code ``h`` (width K), the spherical term
``lambda * ((||h|| - R) / R)^2`` adds ``2 lambda (||h|| - R) / (R^2 ||h||) * h`` to
``dL/dh`` before ``act'``. The norm is a reduction over the whole code width, computed in
the same kernel: the launcher makes the tile span the code width (one pass over ``h``);
wider codes take a loop over the row.
"""

import triton
import triton.language as tl
from revml.kernels.activations import IDENTITY, LEAKY_RELU, RELU, activation_grad

# Inside the square root of ||h||, as revml.reference.SPHERE_EPS.
SPHERE_EPS: tl.constexpr = tl.constexpr(1e-12)


@triton.jit
def grad_input_tile(
    g_ptr,
    w_ptr,
    offs_m,
    offs_k,
    M,
    N,
    K,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``G @ W`` tile (BLOCK_M, BLOCK_K), fp32; G (M, N) and W (N, K) fp32 row-major."""
    m_ok = offs_m < M
    k_ok = offs_k < K
    row_off = offs_m.to(tl.int64) * N
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        n_ok = offs_n < N
        g = tl.load(
            g_ptr + row_off[:, None] + offs_n[None, :],
            mask=m_ok[:, None] & n_ok[None, :],
            other=0.0,
        )
        w = tl.load(
            w_ptr + offs_n[:, None].to(tl.int64) * K + offs_k[None, :],
            mask=n_ok[:, None] & k_ok[None, :],
            other=0.0,
        )
        acc = tl.dot(g, w, acc, input_precision=INPUT_PRECISION)
    return acc


@triton.jit
def row_sumsq(h_ptr, offs_m, M, K, BLOCK_K: tl.constexpr):
    """Sum of squares of whole rows of ``h`` (M, K) fp32 row-major: (BLOCK_M,) fp32."""
    m_ok = offs_m < M
    row_off = offs_m.to(tl.int64) * K
    total = tl.zeros(offs_m.shape, dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        h = tl.load(
            h_ptr + row_off[:, None] + offs_k[None, :],
            mask=m_ok[:, None] & (offs_k < K)[None, :],
            other=0.0,
        )
        total += tl.sum(h * h, axis=1)
    return total


@triton.jit
def linear_backward_kernel(
    g_ptr,
    w_ptr,
    saved_ptr,
    code_ptr,
    sumsq_ptr,
    out_ptr,
    slope,
    sphere_weight,
    radius,
    M,
    N,
    K,
    ACTIVATION: tl.constexpr,
    SPHERE: tl.constexpr,
    CODE_IN_TILE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``dL/dz_{l-1} = (G @ W [+ sphere]) * act'_{l-1}``; grid (cdiv(M, BLOCK_M),
    cdiv(K, BLOCK_K)).

    Pointers (all contiguous, row-major):

    - ``g_ptr``: (M, N) fp32, ``dL/dz_l``. ``w_ptr``: (N, K) fp32, layer ``l``'s weight.
    - ``saved_ptr``: (M, K), what layer ``l-1`` saved for its activation ``ACTIVATION``:
      int8 mask ``z > 0`` (RELU, LEAKY_RELU), fp32 output (TANH, SIGMOID), unread
      (IDENTITY).
    - ``code_ptr``: (M, K) fp32, the code ``h`` (layer ``l-1``'s output), read only if
      ``SPHERE``; ``CODE_IN_TILE`` says ``BLOCK_K >= K`` (one tile spans the code).
    - ``sumsq_ptr``: (M,) fp32, written only if ``SPHERE`` (by the programs with
      ``program_id(1) == 0``): ``sum(h^2)`` per row, for the reported loss.
    - ``out_ptr``: (M, K) fp32, written: ``dL/dz_{l-1}``.

    Scalars, cast to fp32 here: ``slope`` (LeakyReLU of layer ``l-1``), ``sphere_weight``
    (lambda), ``radius`` (R).
    """
    # Inductor may pass Python floats as fp64; keep the arithmetic in fp32.
    slope = tl.cast(slope, tl.float32)
    sphere_weight = tl.cast(sphere_weight, tl.float32)
    radius = tl.cast(radius, tl.float32)
    pid_k = tl.program_id(1)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    grad = grad_input_tile(
        g_ptr, w_ptr, offs_m, offs_k, M, N, K, INPUT_PRECISION, BLOCK_M, BLOCK_N, BLOCK_K
    )
    m_ok = offs_m < M
    ok = m_ok[:, None] & (offs_k < K)[None, :]
    off = offs_m.to(tl.int64)[:, None] * K + offs_k[None, :]
    if SPHERE:
        h = tl.load(code_ptr + off, mask=ok, other=0.0)
        if CODE_IN_TILE:  # BLOCK_K >= K: the norm comes from the tile already loaded
            sumsq = tl.sum(h * h, axis=1)
        else:
            sumsq = row_sumsq(code_ptr, offs_m, M, K, BLOCK_K)
        norm = tl.sqrt(sumsq + SPHERE_EPS)
        coef = 2.0 * sphere_weight * (norm - radius) / (radius * radius * norm)
        grad += coef[:, None] * h
        tl.store(sumsq_ptr + offs_m, sumsq, mask=m_ok & (pid_k == 0))
    if (ACTIVATION == RELU) or (ACTIVATION == LEAKY_RELU):
        saved = tl.load(saved_ptr + off, mask=ok, other=0)
    elif ACTIVATION == IDENTITY:
        saved = grad  # IDENTITY: nothing saved, nothing read
    else:
        saved = tl.load(saved_ptr + off, mask=ok, other=0.0)
    tl.store(out_ptr + off, activation_grad(grad, saved, slope, ACTIVATION), mask=ok)
