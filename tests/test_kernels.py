"""The fused Triton kernels against float64 oracles built from revml.reference.

Run on the CPU with ``TRITON_INTERPRET=1 python -m pytest tests/test_kernels.py`` (the
variable must be set before Triton is imported), or unchanged on a CUDA GPU. Each kernel is
checked on fresh random fp32 inputs of odd sizes, with ``tl.dot`` in IEEE fp32, against
the same maths in float64; tolerances are in ``kernel_utils`` and documented there.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

pytest.importorskip("triton", reason="the Triton kernels need the triton package")

import triton
import triton.language as tl
from kernel_utils import (
    DEVICE,
    HAS_CUDA,
    activation64,
    assert_bit_equal,
    assert_close,
    generator,
    linear_params,
    poison,
    requires_kernel_device,
    to_device,
    tolerance,
)
from revml.kernels.rng import column_keys, dropout_keep, mix32, row_keys

from revml import reference
from revml.model import MLPAutoencoder
from revml.ops import launch, supports_triton, triton_step
from revml.ops.plan import ACTIVATION_CODES, step_plan
from revml.prior import GaussianPrior
from revml.reference import ReverseConfig

pytestmark = [pytest.mark.kernels, requires_kernel_device]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid")
# LeakyReLU slope of the tests: not the default, so a dropped slope cannot pass.
SLOPE = 0.2
# (batch, in_features, out_features): odd, non-power-of-two sizes.
SHAPES = ((7, 123, 45), (5, 37, 13))
# Tiles smaller than the problem in every dimension: several programs per grid axis and
# several reduction steps, so every boundary mask is exercised.
SMALL_BLOCKS = (16, 16, 16)


def _code(name: str) -> int:
    return ACTIVATION_CODES[name]


def _dropout(rows: torch.Tensor, seed: int, step: int, p: float) -> launch.Dropout:
    return launch.Dropout.make(
        rows.to(DEVICE), seed, step, reference.dropout_threshold(p), 1.0 / (1.0 - p)
    )


# ---------------------------------------------------------------------------- the hash


@triton.jit
def _mix32_kernel(in_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    h = tl.load(in_ptr + offs, mask=offs < n, other=0).to(tl.uint32, bitcast=True)
    tl.store(out_ptr + offs, mix32(h).to(tl.int32, bitcast=True), mask=offs < n)


@triton.jit
def _keep_kernel(
    rows_ptr,
    out_ptr,
    M,
    N,
    seed_lo,
    seed_hi,
    step,
    threshold,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    rows = tl.load(rows_ptr + offs_m, mask=offs_m < M, other=0)
    keep = dropout_keep(row_keys(rows, seed_lo, seed_hi, step), column_keys(offs_n), threshold)
    ok = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], keep.to(tl.int8), mask=ok)


def test_mix32_bit_exact():
    gen = generator("mix32")
    h = torch.randint(-(2**31), 2**31, (1000,), dtype=torch.int32, generator=gen)
    h[:6] = torch.tensor([0, 1, -1, 2**31 - 1, -(2**31), 0x632BE5AB - 2**31])
    out = poison((1000,), torch.int32)
    _mix32_kernel[(triton.cdiv(1000, 256),)](h.to(DEVICE), out, 1000, BLOCK=256)
    assert torch.equal(out.cpu(), reference.mix32(h))


@pytest.mark.parametrize(
    ("seed", "step", "p"),
    [
        (0, 1, 0.5),
        (123456789, 977, 0.1),
        (2**40 + 12345, 3, 0.9),  # high word of the seed in play
        (-3, 2**31 + 5, 0.3),  # negative seed, step beyond int32: both as uint32 bits
    ],
)
def test_dropout_keep_bit_exact(seed, step, p):
    gen = generator("keep", seed, step)
    rows = torch.randint(0, 2**62, (29,), generator=gen)
    rows[:3] = torch.tensor([0, 2**32 - 1, 2**32 + 7])  # only the low 32 bits count
    drop = _dropout(rows, seed, step, p)
    out = poison((29, 70), torch.int8)
    _keep_kernel[(2, 3)](
        drop.rows,
        out,
        29,
        70,
        drop.seed_lo,
        drop.seed_hi,
        drop.step,
        drop.threshold,
        BLOCK_M=16,
        BLOCK_N=32,
    )
    expected = reference.dropout_keep(seed, rows, step, 70, p)
    assert torch.equal(out.cpu().bool(), expected), (
        f"{int((out.cpu().bool() != expected).sum())} of {expected.numel()} keep bits differ"
    )


# ---------------------------------------------------------------------------- forward


def _forward_oracle(a, weight, bias, name, keep=None, p=0.0):
    a64 = a.double()
    if keep is not None:
        a64 = a64 * keep.double() * (1.0 / (1.0 - p))
    z = a64 @ weight.double().T
    if bias is not None:
        z = z + bias.double()
    return z, activation64(name, SLOPE)(z)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_linear_forward(shape, name, p):
    M, K, N = shape
    gen = generator("forward", shape, name, p)
    a = torch.randn(M, K, generator=gen)
    weight, bias = linear_params(K, N, gen, bias=name != "tanh")  # one bias-free case
    rows = torch.randint(0, 2**40, (M,), generator=gen)
    drop = _dropout(rows, 11, 4, p) if p else None
    blocks = SMALL_BLOCKS if shape == SHAPES[0] else None
    out, mask = poison((M, N)), poison((M, N), torch.int8)
    a_d, w_d, b_d = to_device(a, weight, bias)
    out, saved = launch.linear_forward(
        a_d, w_d, b_d, _code(name), SLOPE, dropout=drop, out=out, mask=mask, blocks=blocks
    )

    keep = reference.dropout_keep(11, rows, 4, K, p) if p else None
    z, expected = _forward_oracle(a, weight, bias, name, keep, p)
    tol = tolerance(K)
    assert_close(out, expected, **tol, name=f"{name} output")
    if name in ("relu", "leaky_relu"):
        assert saved is mask
        got = saved.cpu()
        assert ((got == 0) | (got == 1)).all(), "mask has unwritten or non-boolean bytes"
        # fp32 and float64 may disagree on the sign of z only where z is within rounding.
        differ = got.bool() != (z > 0)
        assert (z[differ].abs() <= tol["atol"]).all(), f"{int(differ.sum())} mask bits differ"
    else:
        assert saved is None


# ---------------------------------------------------------------------------- last layer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_output_loss(shape, name):
    M, K, D = shape
    gen = generator("output", shape, name)
    a = torch.randn(M, K, generator=gen)
    weight, bias = linear_params(K, D, gen, bias=name != "relu")
    x = torch.rand(M, D, generator=gen)
    miss = torch.rand(M, D, generator=gen) < 0.4
    missing_weight = 0.7
    blocks = SMALL_BLOCKS if shape == SHAPES[0] else None
    dz, dr = poison((M, D)), poison((M, D))
    a_d, w_d, b_d, x_d, miss_d = to_device(a, weight, bias, x, miss)
    dz, dr, sq_error = launch.output_loss(
        a_d, w_d, b_d, _code(name), SLOPE, x_d, miss_d, missing_weight, dz=dz, dr=dr, blocks=blocks
    )

    z = a.double() @ weight.double().T + (0 if bias is None else bias.double())
    z.requires_grad_(True)
    r = activation64(name, SLOPE)(z)
    w = torch.where(miss, missing_weight, 1.0).double()
    loss = (w * (r - x.double()) ** 2).sum(dim=1) / D
    dr64, dz64 = torch.autograd.grad(loss.sum(), [r, z])
    # dr = 2/D * w * (r - x): the K-term error of r, times 2 w / D.
    tol = tolerance(K, scale=2.0 / D)
    assert_close(dr, dr64, **tol, name="dL/dr")
    assert_close(dz, dz64, **tol, name="dL/dz")
    # sum_j w (r - x)^2 over D terms of size O(1): each r carries the K-term error.
    assert_close(sq_error, loss.detach() * D, **tolerance(K, scale=2.0 * D), name="sum w(r-x)^2")


# ---------------------------------------------------------------------------- backward


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("sphere", [False, True])
def test_linear_backward(shape, name, sphere):
    """(G @ W [+ spherical gradient]) * act'(z) of the previous layer, from what it saved.

    ``shape`` is (batch, width of this layer's input, width of its output), so the
    reduction runs over the output width N and the result has the input width K.
    """
    M, K, N = shape
    gen = generator("backward", shape, name, sphere)
    g = torch.randn(M, N, generator=gen) / N
    weight, _ = linear_params(K, N, gen, bias=False)
    z_prev = torch.randn(M, K, generator=gen)
    sphere_weight, radius = 0.3, 1.5
    # What the previous layer's forward saved (fp32 output, or int8 mask).
    h = activation64(name, SLOPE)(z_prev.double()).float()
    saved = (z_prev > 0).to(torch.int8) if name in ("relu", "leaky_relu") else h
    blocks = SMALL_BLOCKS if shape == SHAPES[0] else None  # K > 16: the norm loops
    g_d, w_d, saved_d, h_d = to_device(g, weight, saved, h)
    out, sumsq = launch.linear_backward(
        g_d,
        w_d,
        _code(name),
        SLOPE,
        saved_d,
        code=h_d if sphere else None,
        sphere_weight=sphere_weight,
        radius=radius,
        out=poison((M, K)),
        blocks=blocks,
    )

    z64 = z_prev.double().requires_grad_(True)
    h64 = activation64(name, SLOPE)(z64)
    dh = g.double() @ weight.double()
    if sphere:
        h_leaf = h64.detach().requires_grad_(True)
        norm = torch.sqrt((h_leaf * h_leaf).sum(dim=1) + reference.SPHERE_EPS)
        penalty = sphere_weight * ((norm - radius) / radius) ** 2
        (dsphere,) = torch.autograd.grad(penalty.sum(), h_leaf)
        dh = dh + dsphere
    (expected,) = torch.autograd.grad(h64, z64, dh)
    # G entries are O(1/N), so the N-term product is O(1/sqrt(N)); the spherical term
    # adds a K-term norm of O(1) entries.
    assert_close(out, expected, **tolerance(N + K, scale=1.0), name=f"{name} dL/dz_prev")
    if sphere:
        assert_close(sumsq, (h.double() ** 2).sum(dim=1), **tolerance(K, scale=K), name="sum h^2")
    else:
        assert sumsq is None


# ---------------------------------------------------------------------------- update


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.25])
@pytest.mark.parametrize("clamp", [False, True])
def test_input_update(shape, p, clamp):
    """dL/dx = (G @ W0) * keep / (1 - p) - dr, then masked Adam and clamp, in place."""
    B, D, N = shape
    gen = generator("update", shape, p, clamp)
    g = torch.randn(B, N, generator=gen) / N
    weight, _ = linear_params(D, N, gen, bias=False)
    dr = torch.randn(B, D, generator=gen) * (2.0 / D)
    x = torch.rand(B, D, generator=gen)
    miss = torch.rand(B, D, generator=gen) < 0.4
    m = torch.randn(B, D, generator=gen) * 0.01
    v = torch.rand(B, D, generator=gen) * 1e-4
    rows = torch.randint(0, 2**40, (B,), generator=gen)
    lo = torch.full((D,), 0.2) if clamp else None
    hi = torch.full((D,), 0.8) if clamp else None
    step, cfg = 7, ReverseConfig(lr=0.05, dropout=p, dropout_rescale=True)
    bias1, bias2 = 1.0 - cfg.beta1**step, 1.0 - cfg.beta2**step
    x_d, m_d, v_d = to_device(x, m, v)
    g_d, w_d, dr_d, miss_d, lo_d, hi_d = to_device(g, weight, dr, miss, lo, hi)
    launch.input_update(
        g_d,
        w_d,
        dr_d,
        x_d,
        m_d,
        v_d,
        miss_d,
        beta1=cfg.beta1,
        beta2=cfg.beta2,
        step_size=cfg.lr / bias1,
        bias2_sqrt=math.sqrt(bias2),
        eps=cfg.eps,
        dropout=_dropout(rows, 5, step, p) if p else None,
        lo=lo_d,
        hi=hi_d,
        blocks=SMALL_BLOCKS if shape == SHAPES[0] else None,
    )

    grad = g.double() @ weight.double()
    if p:
        grad = grad * reference.dropout_keep(5, rows, step, D, p).double() / (1.0 - p)
    grad = grad - dr.double()
    x64, m64, v64 = x.double(), m.double(), v.double()
    reference.masked_adam_(
        x64,
        grad,
        m64,
        v64,
        miss,
        step,
        cfg,
        None if lo is None else lo.double(),
        None if hi is None else hi.double(),
    )
    # m, v: the N-term gradient times (1 - beta); x: Adam divides the gradient error by
    # sqrt(v) ~ |g|, so it carries the gradient's relative error times the step size.
    tol = tolerance(N)
    assert_close(m_d, m64, **tol, name="m")
    assert_close(v_d, v64, **tolerance(N, scale=1e-3), name="v")
    assert_close(x_d, x64, **tolerance(N, scale=10 * cfg.lr / bias1), name="x")
    for got, before, what in ((x_d, x, "x"), (m_d, m, "m"), (v_d, v, "v")):
        assert_bit_equal(got.cpu()[~miss], before[~miss], name=f"observed entries of {what}")


# ---------------------------------------------------------------------------- whole step


def _autoencoder(name: str, bottleneck: str, output: str, seed: int) -> MLPAutoencoder:
    torch.manual_seed(seed)
    return MLPAutoencoder(
        37,
        hidden=(19,),
        bottleneck=7,
        activation=name,
        bottleneck_activation=bottleneck,
        output_activation=output,
        negative_slope=SLOPE,
    )


def _batch(seed: int, batch: int = 6, features: int = 37):
    gen = generator("batch", seed)
    x = torch.rand(batch, features, generator=gen)
    miss = torch.rand(batch, features, generator=gen) < 0.35
    rows = torch.randint(0, 10_000, (batch,), generator=gen)
    return x, miss, rows


def _prior(features: int) -> GaussianPrior:
    """A Gaussian prior in fp32 with a well-spread precision (eigenvalues ~0.4 to ~100)."""
    gen = generator("prior", features)
    a = torch.randn(features, features, generator=gen) / features**0.5
    precision = 5 * (a @ a.T) + 0.4 * torch.eye(features)
    return GaussianPrior(0.5 + 0.1 * torch.randn(features, generator=gen), precision)


# (hidden activation, code activation, output activation, config, clamp)
STEP_CASES = {
    "relu-sphere": (
        "relu",
        "identity",
        "sigmoid",
        ReverseConfig(sphere_weight=0.05, missing_weight=0.5),
        False,
    ),
    "tanh-dropout-clamp": (
        "tanh",
        "tanh",
        "identity",
        ReverseConfig(dropout=0.2, dropout_rescale=True, sphere_weight=0.02, seed=7),
        True,
    ),
    "leaky-dropout": (
        "leaky_relu",
        "relu",
        "sigmoid",
        ReverseConfig(dropout=0.1, dropout_rescale=True, sphere_weight=0.0, lr=0.05),
        False,
    ),
    "sigmoid-all": (
        "sigmoid",
        "leaky_relu",
        "tanh",
        ReverseConfig(dropout=0.3, dropout_rescale=True, sphere_weight=0.1, radius=2.0),
        True,
    ),
    # The imputer's default loop: hiding dropout (no 1 / (1 - p) rescale), full weight on
    # the missing entries, clamped to the data range.
    "relu-hide-clamp": (
        "relu",
        "identity",
        "sigmoid",
        ReverseConfig(dropout=0.3, dropout_rescale=False, missing_weight=1.0, seed=3),
        True,
    ),
    # The tables' loop: hiding dropout plus the Gaussian prior, whose gradient (one matrix
    # product outside the kernels) joins the fused update through the direct term.
    "relu-hide-prior": (
        "relu",
        "identity",
        "identity",
        ReverseConfig(
            dropout=0.45,
            dropout_rescale=False,
            missing_weight=0.3,
            seed=5,
            prior_weight=0.03,
            prior=_prior(37),
        ),
        True,
    ),
}

# Tolerances of one whole step against the float64 reference from the same fp32 state.
# loss: 4 layers of width <= 37 in fp32, ~ depth * width * 2**-24 ~ 1e-5 relative.
# m, v: carry the gradient's relative error (v twice), which exceeds that bound where the
#   backprop and direct terms of dL/dx nearly cancel; 1e-4.
# x: Adam's update is lr * m / sqrt(v) (lr * g / (|g| + eps) at step 1), so the gradient
#   error enters only as lr * its relative error (~2e-7 for lr = 0.02); the rest is the
#   fp32 rounding of x in [0, 1] (2**-23 per operation): 2e-6 is ~16 ulp.
# Measured over 48 random problems x 5 steps under the interpreter: at most 0.16 of each.
STEP_TOLERANCE = {
    torch.float32: {
        "loss": {"rtol": 1e-5, "atol": 1e-7},
        "x": {"rtol": 1.3e-6, "atol": 2e-6},
        "m": {"rtol": 1e-4, "atol": 1e-8},
        "v": {"rtol": 1e-4, "atol": 1e-11},
    },
}


@pytest.fixture
def poisoned_buffers(monkeypatch):
    """Every buffer the launchers allocate starts as NaN (int8: 127), so a value read
    before a kernel wrote it shows up in the results."""
    monkeypatch.setattr(
        launch,
        "_empty",
        lambda shape, dtype, device: torch.full(
            shape, float("nan") if dtype.is_floating_point else 127, dtype=dtype, device=device
        ),
    )


def _reference_step64(ae64, state, miss, rows, step, cfg, lo, hi):
    """reference_step in float64 on the CPU from an fp32 (x, m, v) state."""
    x64, m64, v64 = (t.double().cpu() for t in state)
    lo64, hi64 = (None if b is None else b.double() for b in (lo, hi))
    loss = reference.reference_step(ae64, x64, miss, m64, v64, rows, step, cfg, lo64, hi64)
    return loss, x64, m64, v64


@pytest.mark.parametrize("case", STEP_CASES)
def test_triton_step_matches_reference(case, poisoned_buffers):
    """Five steps, each from the kernels' own fp32 state, against the float64 reference
    stepped from that same state (so errors never accumulate between steps)."""
    name, bottleneck, output, cfg, clamp = STEP_CASES[case]
    ae = _autoencoder(name, bottleneck, output, seed=len(case))
    ae64 = copy.deepcopy(ae).double()
    x, miss, rows = _batch(len(case))
    lo, hi = (x.min(0).values, x.max(0).values) if clamp else (None, None)
    x_d, miss_d, rows_d, lo_d, hi_d = to_device(x, miss, rows, lo, hi)
    m_d, v_d = torch.zeros_like(x_d), torch.zeros_like(x_d)
    tol = STEP_TOLERANCE[torch.float32]
    for step in range(1, 6):
        before = x_d.cpu(), m_d.cpu(), v_d.cpu()
        expected = _reference_step64(ae64, before, miss, rows, step, cfg, lo, hi)
        loss = triton_step(ae, x_d, miss_d, m_d, v_d, rows_d, step, cfg, lo_d, hi_d)
        for got, want, what in zip(
            (loss, x_d, m_d, v_d), expected, ("loss", "x", "m", "v"), strict=True
        ):
            assert_close(got, want, **tol[what], name=f"step {step} {what}")
        for got, old, what in zip((x_d, m_d, v_d), before, "xmv", strict=True):
            assert_bit_equal(got.cpu()[~miss], old[~miss], f"step {step} observed {what}")


def test_triton_step_loop_matches_reference():
    """Twenty steps run independently in fp32 (kernels) and float64 (reference)."""
    ae = _autoencoder("relu", "identity", "sigmoid", seed=3)
    ae64 = copy.deepcopy(ae).double()
    x, miss, rows = _batch(3, batch=8)
    cfg = ReverseConfig(n_steps=20, dropout=0.1, dropout_rescale=True, sphere_weight=0.05)
    x_d, miss_d, rows_d = to_device(x, miss, rows)
    x_out, loss = reference.reverse_impute(ae, x_d, miss_d, rows_d, cfg, step_fn=triton_step)
    x64, loss64 = reference.reverse_impute(ae64, x.double(), miss, rows, cfg)
    # Twenty steps of the one-step x error, compounded mildly through the gradient's
    # dependence on x: 20 * STEP_TOLERANCE["x"]["atol"].
    assert_close(x_out, x64, rtol=1.3e-6, atol=4e-5, name="x after 20 steps")
    assert_close(loss, loss64, rtol=1e-4, atol=1e-6, name="loss after 20 steps")
    assert (x_out.cpu() - x).abs().max() > 0.1, "the loop did not move the missing entries"


# ---------------------------------------------------------------------------- API


def test_unsupported_module_raises():
    module = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert not supports_triton(module)
    x = torch.rand(2, 4, device=DEVICE)
    state = (torch.zeros_like(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="MLP autoencoder"):
        triton_step(module, x, x > 0.5, *state, torch.arange(2), 1, ReverseConfig())


def test_bad_state_raises():
    ae = _autoencoder("relu", "identity", "sigmoid", seed=0)
    assert supports_triton(ae)
    x = torch.rand(3, 37, device=DEVICE)
    miss, rows = x > 0.5, torch.arange(3)
    with pytest.raises(ValueError, match="m must be"):
        triton_step(ae, x, miss, x.double(), torch.zeros_like(x), rows, 1, ReverseConfig())
    with pytest.raises(ValueError, match="features"):
        triton_step(
            ae, x[:, :5].contiguous(), miss[:, :5], x[:, :5], x[:, :5], rows, 1, ReverseConfig()
        )


def test_plan_is_cached_and_refreshed():
    ae = _autoencoder("relu", "identity", "sigmoid", seed=0)
    plan = step_plan(ae, DEVICE)
    assert step_plan(ae, DEVICE) is plan
    with torch.no_grad():
        ae.decoder[0].weight.mul_(2.0)  # in-place change: the version counter moves
    fresh = step_plan(ae, DEVICE)
    assert fresh is not plan
    torch.testing.assert_close(fresh.weights[2].cpu(), ae.decoder[0].weight.detach().cpu())


@pytest.mark.skipif(not HAS_CUDA, reason="TF32 is a GPU mode of tl.dot")
def test_linear_forward_tf32():
    M, K, N = SHAPES[0]
    gen = generator("tf32")
    a = torch.randn(M, K, generator=gen)
    weight, bias = linear_params(K, N, gen)
    a_d, w_d, b_d = to_device(a, weight, bias)
    out, _ = launch.linear_forward(a_d, w_d, b_d, _code("identity"), 0.0, input_precision="tf32")
    _, expected = _forward_oracle(a, weight, bias, "identity")
    assert_close(out, expected, **tolerance(K, dtype="tf32"), name="tf32 output")
