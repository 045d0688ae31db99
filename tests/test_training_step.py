"""The hand-written training update (revml.training_step) against autograd and torch's Adam:
in torch's operations (:class:`MLPStep`, the path off the CPU) and in NumPy's
(:class:`HostMLPStep`, the CPU's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from asserts import TOLERANCES, assert_close
from torch import nn

from revml import training
from revml.model import MLPAutoencoder
from revml.training import TrainConfig, train_autoencoder
from revml.training_step import HostMLPStep, MLPStep

#: Both updates: torch's operations and NumPy's.
HOST = pytest.mark.parametrize("host", [False, True], ids=["torch", "numpy"])


def _inputs(step, *tensors):
    """``tensors`` as ``step`` takes them: NumPy arrays for the NumPy update."""
    return [t.numpy() if step.host else t for t in tensors]


#: (hidden activation, code activation, output activation) and a shape (rows, features,
#: hidden widths, code width) with odd sizes
NETWORKS = [
    ("relu", "identity", "sigmoid", (37, 13, (23, 9), 5)),
    ("leaky_relu", "tanh", "identity", (16, 30, (64, 32), 15)),
    ("tanh", "sigmoid", "sigmoid", (7, 6, (11,), 3)),
    ("sigmoid", "relu", "tanh", (50, 4, (5, 3), 2)),
]


def _network(acts, shape, dtype):
    hidden_act, code_act, out_act = acts
    n, d, hidden, code = shape
    net = MLPAutoencoder(
        d,
        hidden,
        code,
        activation=hidden_act,
        bottleneck_activation=code_act,
        output_activation=out_act,
        negative_slope=0.07,
    ).to(dtype)
    x = torch.randn(n, d, dtype=dtype)
    target = torch.rand(n, d, dtype=dtype)
    observed = torch.rand(n, d) < 0.7
    return net, x, target, observed


def _autograd_loss(net, x, target, observed):
    out = net(x)
    return ((out - target) ** 2 * observed).sum() / observed.sum().clamp_min(1)


@HOST
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("hidden_act", "code_act", "out_act", "shape"), NETWORKS)
def test_gradients_match_autograd(hidden_act, code_act, out_act, shape, dtype, host):
    """Loss and every weight gradient equal float64 autograd's, within the dtype's tolerance."""
    net64, x, target, observed = _network((hidden_act, code_act, out_act), shape, torch.float64)
    loss64 = _autograd_loss(net64, x, target, observed)
    loss64.backward()
    expected = {name: p.grad.clone() for name, p in net64.named_parameters()}

    net = MLPAutoencoder(**net64.config()).to(dtype)
    net.load_state_dict(net64.state_dict())
    step = MLPStep.for_module(net, dtype, lr=1e-3, host=host)
    assert step is not None and step.host == host
    loss, n_obs = step.loss_and_grad(*_inputs(step, x.to(dtype), target.to(dtype), observed))
    assert int(n_obs) == int(observed.sum())
    tol = TOLERANCES[dtype]
    assert_close(loss, loss64, **tol, name="loss")
    # the flat gradient buffer, laid out parameter by parameter
    grads = torch.cat([g.reshape(-1) for g in expected.values()])
    scale = grads.abs().max()
    assert_close(step.grad, grads, rtol=tol["rtol"], atol=tol["atol"] * scale, name="grad")
    step.release()


@HOST
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_updates_match_torch_adam(weight_decay, host):
    """Twenty updates equal autograd + torch.optim.Adam's (float64), learning-rate changes
    included; afterwards the parameters own their storage again."""
    acts, shape = NETWORKS[0][:3], NETWORKS[0][3]
    reference, x, target, observed = _network(acts, shape, torch.float64)
    net = MLPAutoencoder(**reference.config()).double()
    net.load_state_dict(reference.state_dict())
    opt = torch.optim.Adam(
        reference.parameters(), lr=3e-3, weight_decay=weight_decay, foreach=False
    )
    step = MLPStep.for_module(net, torch.float64, lr=3e-3, weight_decay=weight_decay, host=host)
    for i in range(20):
        if i == 10:
            for group in [*opt.param_groups, *step.param_groups]:
                group["lr"] *= 0.5
        rows = torch.arange(i % 5, shape[0], 2)
        opt.zero_grad()
        expected_loss = _autograd_loss(reference, x[rows], target[rows], observed[rows])
        expected_loss.backward()
        opt.step()
        loss, _ = step.update(*_inputs(step, x[rows], target[rows], observed[rows]))
        assert_close(loss, expected_loss, **TOLERANCES[torch.float64], name=f"loss {i}")
    step.release()
    pointers = {p.data_ptr() for p in net.parameters()}
    assert len(pointers) == len(list(net.parameters()))
    for (name, p), q in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert_close(p, q, **TOLERANCES[torch.float64], name=name)


def test_applies_only_where_it_computes_the_same():
    net = MLPAutoencoder(6, (5,), 2)
    # on the CPU the NumPy update unless torch's is asked for
    assert type(MLPStep.for_module(net, torch.float32, lr=1e-3)) is HostMLPStep
    assert type(MLPStep.for_module(net, torch.float32, lr=1e-3, host=False)) is MLPStep
    with pytest.raises(ValueError, match="on the CPU"):
        MLPStep.for_module(MLPAutoencoder(6, (5,), 2).to("meta"), torch.float32, 1e-3, host=True)
    assert MLPStep.for_module(net, torch.bfloat16, lr=1e-3) is None
    assert MLPStep.for_module(net.double(), torch.float32, lr=1e-3) is None  # dtype mismatch

    class Extra(MLPAutoencoder):
        def __init__(self):
            super().__init__(6, (5,), 2)
            self.scale = nn.Parameter(torch.ones(6))

    assert MLPStep.for_module(Extra(), torch.float32, lr=1e-3) is None
    conv = nn.Sequential(nn.Conv1d(1, 1, 3))
    assert MLPStep.for_module(conv, torch.float32, lr=1e-3) is None


@HOST
def test_training_run_matches_the_autograd_path(host, monkeypatch):
    """A whole masked training run through the hand-written update ends at the weights the
    autograd path reaches (float64, the same masks and order)."""
    monkeypatch.setattr(training, "HOST_UPDATE", host)
    x = torch.rand(90, 7, dtype=torch.float64)
    x[torch.rand(90, 7) < 0.2] = float("nan")
    cfg = TrainConfig(epochs=4, batch_size=16, lr=2e-3, masking="mixed", self_condition=0.5)
    fast = MLPAutoencoder(7, (12,), 4, output_activation="identity").double()
    slow = MLPAutoencoder(**fast.config()).double()
    slow.load_state_dict(fast.state_dict())
    fill = torch.zeros(7, dtype=torch.float64)
    fast_history = train_autoencoder(fast, x, fill, cfg)
    # wrapping the module (as a distributed fit does) takes the autograd path
    slow_history = train_autoencoder(slow, x, fill, cfg, hook=_wrap_only(), validation=None)
    assert fast_history.n_updates == slow_history.n_updates
    assert_close(
        torch.tensor(fast_history.loss),
        torch.tensor(slow_history.loss),
        rtol=1e-9,
        atol=1e-12,
        name="epoch losses",
    )
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        assert_close(p, q, rtol=1e-9, atol=1e-12, name=name)


def _wrap_only():
    from revml.training import TrainingHook

    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    return TrainingHook(wrap=Wrapper)


@HOST
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("hidden_act", "code_act", "out_act", "shape"), NETWORKS)
def test_forward_is_the_modules(hidden_act, code_act, out_act, shape, dtype, host):
    """A self-conditioned training update runs the step's forward instead of the module:
    torch's update the same products, so the same bits; NumPy's within the dtype's
    tolerance of float64 autograd's; the module's parameters are not touched."""
    net, x, _, _ = _network((hidden_act, code_act, out_act), shape, dtype)
    with torch.no_grad():
        expected = net(x.to(dtype))
        exact = net.double()(x.double())
        net.to(dtype)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    step = MLPStep.for_module(net, dtype, lr=1e-3, host=host)
    assert step is not None
    (inp,) = _inputs(step, x.to(dtype))
    out = torch.as_tensor(step.forward(inp))
    outputs = [inp]
    again = torch.as_tensor(step.forward(inp, outputs))
    assert len(outputs) == 1 + len(step.layers)
    assert out.dtype == dtype and torch.equal(again, out)
    assert torch.equal(torch.as_tensor(outputs[-1]), out)
    if host:
        assert isinstance(outputs[-1], np.ndarray)
        assert_close(out, exact, **TOLERANCES[dtype], name="forward")
    else:
        assert torch.equal(out, expected)
    step.release()
    for name, p in net.named_parameters():
        assert torch.equal(p, before[name]), name


def test_large_networks_train_through_autograd():
    """The hand-written update only where it pays: small products and few parameters (its
    Adam passes over every parameter a dozen times)."""
    from revml.training import MAX_STEP_PARAMETERS, _overhead_bound

    cfg = TrainConfig(batch_size=16)
    small = MLPAutoencoder(200, (400, 200), 64)
    large = MLPAutoencoder(300, (600, 300), 64)
    assert sum(p.numel() for p in small.parameters()) <= MAX_STEP_PARAMETERS
    assert sum(p.numel() for p in large.parameters()) > MAX_STEP_PARAMETERS
    assert _overhead_bound(small, cfg)
    assert not _overhead_bound(large, cfg)
    assert not _overhead_bound(small, TrainConfig(batch_size=4096))  # large products
