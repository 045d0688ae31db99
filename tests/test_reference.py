"""The reference maths against independent float64 derivations, on odd shapes."""

from __future__ import annotations

import pytest
import torch
from asserts import TOLERANCES, assert_close

from revml.model import MLPAutoencoder, mlp_layers
from revml.reference import (
    SPHERE_EPS,
    ReverseConfig,
    column_keys,
    dropout_keep,
    masked_adam_,
    mix32,
    reference_step,
    reverse_grad,
    reverse_impute,
    row_keys,
)

ACTS = ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]


def _mix_py(h: int) -> int:
    m = 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x7FEB352D) & m
    h ^= h >> 15
    h = (h * 0x846CA68B) & m
    return h ^ (h >> 16)


def _signed(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def test_mix32_is_uint32_arithmetic():
    vals = [0, 1, 2, 7, 12345, 2**31 - 1, 2**31, 2**32 - 1, 0xDEADBEEF]
    vals += torch.randint(0, 2**32, (200,), dtype=torch.int64).tolist()
    out = mix32(torch.tensor([_signed(v) for v in vals], dtype=torch.int32))
    assert [o & 0xFFFFFFFF for o in out.tolist()] == [_mix_py(v) for v in vals]


def test_dropout_keys_match_pure_python():
    seed, step = 2**40 + 12345, 17
    rows = torch.tensor([0, 5, 2**31 + 3, 123456789])
    k = _mix_py((seed & 0xFFFFFFFF) ^ 0x9E3779B9)
    k = _mix_py(k ^ (seed >> 32))
    expect = [_mix_py(_mix_py(k ^ (r & 0xFFFFFFFF)) ^ step) for r in rows.tolist()]
    got = [v & 0xFFFFFFFF for v in row_keys(seed, rows, step).tolist()]
    assert got == expect
    cols = [_mix_py(c ^ 0x632BE5AB) for c in range(11)]
    assert [v & 0xFFFFFFFF for v in column_keys(11).tolist()] == cols


def test_dropout_mask_is_per_sample_and_has_the_right_rate():
    rows = torch.arange(3000)
    keep = dropout_keep(7, rows, 3, 97, 0.3)
    assert abs(keep.float().mean().item() - 0.7) < 0.01
    # A sample's mask depends on its index only, not on the rest of the batch.
    sub = dropout_keep(7, rows[[5, 1234, 2999]], 3, 97, 0.3)
    assert torch.equal(sub, keep[[5, 1234, 2999]])
    # Different steps and seeds give different masks.
    assert not torch.equal(keep, dropout_keep(7, rows, 4, 97, 0.3))
    assert not torch.equal(keep, dropout_keep(8, rows, 3, 97, 0.3))


def _act(name, z, slope):
    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "identity": lambda t: t,
        "leaky_relu": lambda t: torch.where(t > 0, t, slope * t),
    }[name](z)


def _act_grad(name, z, a, slope):
    if name == "relu":
        return (z > 0).to(z.dtype)
    if name == "leaky_relu":
        return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, slope))
    if name == "tanh":
        return 1 - a * a
    if name == "sigmoid":
        return a * (1 - a)
    return torch.ones_like(z)


def manual_grad(module, x, miss, keep, cfg):
    """Hand-written backprop of the reverse loss in float64: an oracle independent of autograd."""
    layers, n_enc = mlp_layers(module)
    d = x.shape[1]
    scale = 1.0 / (1.0 - cfg.dropout)
    a = x * keep * scale if keep is not None else x
    zs, acts = [], [a]
    for spec in layers:
        z = a @ spec.weight.double().T + spec.bias.double()
        a = _act(spec.activation, z, spec.negative_slope)
        zs.append(z)
        acts.append(a)
    r, h = acts[-1], acts[n_enc]
    w = torch.where(miss, cfg.missing_weight, 1.0).double()
    g = 2.0 / d * w * (r - x)
    for li in range(len(layers) - 1, -1, -1):
        spec = layers[li]
        g = g * _act_grad(spec.activation, zs[li], acts[li + 1], spec.negative_slope)
        g = g @ spec.weight.double()
        if li == n_enc and cfg.sphere_weight:
            norm = torch.sqrt((h * h).sum(1, keepdim=True) + SPHERE_EPS)
            g = g + cfg.sphere_weight * 2 * (norm - cfg.radius) / cfg.radius**2 * h / norm
    if keep is not None:
        g = g * keep * scale
    return g - 2.0 / d * w * (r - x)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dropout", [0.0, 0.25])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_reverse_grad_matches_manual_backprop(act, dropout, dtype):
    torch.manual_seed(hash((act, dropout)) % 2**31)
    b, d = 7, 123
    ae = MLPAutoencoder(
        d,
        hidden=(45, 19),
        bottleneck=6,
        activation=act,
        output_activation="sigmoid" if act != "sigmoid" else "tanh",
        negative_slope=0.07,
    )
    x = torch.rand(b, d, dtype=torch.float64)
    miss = torch.rand(b, d) < 0.4
    rows = torch.arange(100, 100 + b)
    cfg = ReverseConfig(
        dropout=dropout,
        dropout_rescale=True,
        missing_weight=0.7,
        sphere_weight=0.3,
        radius=1.7,
        seed=3,
    )
    keep = dropout_keep(cfg.seed, rows, 5, d, dropout).double() if dropout else None
    expect = manual_grad(ae.double(), x, miss, keep, cfg)
    grad, loss = reverse_grad(ae.to(dtype), x.to(dtype), miss, rows, 5, cfg)
    tol = TOLERANCES[dtype]
    # atol scales with the gradient's magnitude (reduction width ~ hundreds of terms).
    assert_close(
        grad,
        expect,
        rtol=tol["rtol"] * 10,
        atol=tol["atol"] * expect.abs().max(),
        name=f"grad[{act}, p={dropout}, {dtype}]",
    )
    assert loss.shape == (b,) and torch.isfinite(loss).all()


def test_masked_adam_matches_torch_optim_adam_on_missing_entries():
    b, d = 5, 31
    x0 = torch.randn(b, d, dtype=torch.float64)
    miss = torch.rand(b, d) < 0.5
    cfg = ReverseConfig(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-7)
    x, m, v = x0.clone(), torch.zeros_like(x0), torch.zeros_like(x0)
    p = torch.nn.Parameter(x0.clone())
    opt = torch.optim.Adam([p], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=False)
    for step in range(1, 11):
        g = torch.randn(b, d, dtype=torch.float64)
        masked_adam_(x, g, m, v, miss, step, cfg)
        p.grad = torch.where(miss, g, 0.0)
        opt.step()
    assert_close(x[miss], p.detach()[miss], rtol=1e-12, atol=1e-14, name="adam x")
    assert torch.equal(x[~miss], x0[~miss])
    assert (m[~miss] == 0).all() and (v[~miss] == 0).all()


def test_clamp_bounds_missing_entries_only():
    b, d = 4, 9
    x = torch.full((b, d), 5.0)
    miss = torch.rand(b, d) < 0.5
    lo, hi = torch.zeros(d), torch.ones(d)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    masked_adam_(x, torch.randn(b, d), m, v, miss, 1, ReverseConfig(), lo, hi)
    assert (x[miss] <= 1).all() and (x[miss] >= 0).all()
    assert (x[~miss] == 5.0).all()


def test_reverse_loop_reduces_loss_and_keeps_observed():
    torch.manual_seed(1)
    d = 37
    ae = MLPAutoencoder(d, hidden=(19,), bottleneck=7).requires_grad_(False)
    x = torch.rand(11, d)
    miss = torch.rand(11, d) < 0.3
    rows = torch.arange(11)
    cfg = ReverseConfig(n_steps=60, lr=0.05, dropout=0.0, sphere_weight=0.0)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    first = reference_step(ae, x.clone(), miss, m, v, rows, 1, cfg)
    out, loss = reverse_impute(ae, x, miss, rows, cfg)
    assert (loss < first).all()
    assert torch.equal(out[~miss], x[~miss])
