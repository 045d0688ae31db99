"""One training update of an MLP autoencoder with a hand-written backward pass.

On a table of a few hundred rows a training update is a handful of tiny GEMMs, and
autograd's graph building, the module calls and a per-tensor Adam cost more than the
arithmetic (on the 2-core CPU: 1.08 ms an update for breast cancer's 30-64-32-15 network at
batch 32, against 0.42 ms here with the same losses). :class:`MLPStep` computes the same
masked mean squared error and its weight gradients directly: the forward keeps each layer's
output, the backward walks the layers in reverse using the activation's derivative written
in terms of that output. ``tests/test_training_step.py`` checks its gradients and a whole
training run against autograd (the reference) in float64.

It applies to a module :func:`revml.model.mlp_layers` describes, in float32 or float64, on a
single process; anything else (a wrapped distributed module, bfloat16 arithmetic) trains
through autograd. On the CPU the update runs in NumPy (:class:`HostMLPStep`): the same
operations on the same memory, each a microsecond or two where a torch call costs five to
ten, and an update of a small table's network is some fifty of them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from .model import LayerSpec, mlp_layers


def _backward_activation(g, y, layer: LayerSpec, where=torch.where):
    """The gradient through ``layer``'s activation, from its output ``y`` (tensors, or
    NumPy arrays with ``where=np.where``)."""
    act = layer.activation
    if act == "relu":
        return g * (y > 0)
    if act == "leaky_relu":
        # the output's sign is the input's for a positive slope
        return where(y > 0, g, g * layer.negative_slope)
    if act == "tanh":
        return g * (1 - y * y)
    if act == "sigmoid":
        return g * (y * (1 - y))
    return g


def _forward_activation(h: torch.Tensor, layer: LayerSpec) -> torch.Tensor:
    act = layer.activation
    if act == "relu":
        return h.relu_()
    if act == "leaky_relu":
        return torch.nn.functional.leaky_relu_(h, layer.negative_slope)
    if act == "tanh":
        return h.tanh_()
    if act == "sigmoid":
        return h.sigmoid_()
    return h


class MLPStep:
    """Training updates of an MLP autoencoder without autograd or ``torch.optim``.

    While it exists, the module's parameters are views of one flat buffer, so Adam is eight
    tensor operations an update whatever the number of layers; :meth:`release` gives each
    parameter its own storage back. ``update(inp, target, observed)`` takes one Adam step
    (torch's ``Adam``: L2 ``weight_decay`` added to the gradient, betas (0.9, 0.999), eps
    1e-8) on ``sum(((module(inp) - target) * observed) ** 2) / max(sum(observed), 1)`` and
    returns that loss (0-d) and the number of scored entries. ``param_groups[0]["lr"]`` is
    the learning rate, as on a torch optimiser (early stopping decays it there).
    """

    betas = (0.9, 0.999)
    eps = 1e-8
    #: Whether the update takes and returns NumPy arrays (:class:`HostMLPStep`).
    host = False

    def __init__(self, layers: list[LayerSpec], lr: float, weight_decay: float):
        self.layers = layers
        self.param_groups = [{"lr": float(lr)}]
        self.weight_decay = float(weight_decay)
        params = [p for layer in layers for p in _params(layer)]
        like = params[0]
        total = sum(p.numel() for p in params)
        self.flat = torch.empty(total, dtype=like.dtype, device=like.device)
        self.grad = torch.zeros_like(self.flat)
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.steps = 0
        self._grads: dict[int, torch.Tensor] = {}
        offset = 0
        with torch.no_grad():
            for p in params:
                view = self.flat[offset : offset + p.numel()].view_as(p)
                view.copy_(p)
                p.data = view
                self._grads[id(p)] = self.grad[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
            # Each weight's transpose as a view of the flat buffer, made once: the updates
            # write the buffer in place (37,530 ``.t()`` calls, 70 ms of a 2,502-update fit).
            self._transposed = [layer.weight.t() for layer in layers]

    @classmethod
    def for_module(
        cls,
        module: nn.Module,
        dtype: torch.dtype,
        lr: float,
        weight_decay: float = 0.0,
        host: bool | None = None,
    ) -> MLPStep | None:
        """The step for ``module``, or ``None`` where it does not apply (see the module doc):
        a :class:`HostMLPStep` for parameters on the CPU (``host=None``; ``host=False``:
        torch's operations there too)."""
        if dtype not in (torch.float32, torch.float64):
            return None
        described = mlp_layers(module)
        if described is None:
            return None
        layers, _ = described
        params = [p for layer in layers for p in _params(layer)]
        if any(p.dtype != dtype or p.device != params[0].device for p in params):
            return None
        # every trainable parameter must be one of the layers' (nothing else to train)
        owned = {id(p) for p in params}
        if len(owned) != len(params):
            return None
        if any(id(p) not in owned for p in module.parameters() if p.requires_grad):
            return None
        on_cpu = params[0].device.type == "cpu"
        if host is None:
            host = on_cpu
        elif host and not on_cpu:
            raise ValueError("the NumPy update needs the parameters on the CPU")
        return (HostMLPStep if host else MLPStep)(layers, lr, weight_decay)

    @torch.no_grad()
    def forward(self, inp: torch.Tensor, outputs: list | None = None) -> torch.Tensor:
        """The module's output for ``inp`` with its own products (``nn.Linear`` is
        ``addmm``), so the same numbers, without its module calls (a self-conditioned
        update's extra forward: 161 us through the module for breast cancer's network);
        each layer's output is appended to ``outputs`` if given."""
        h = inp
        for layer, weight_t in zip(self.layers, self._transposed, strict=True):
            if layer.bias is None:
                h = h @ weight_t
            else:
                h = torch.addmm(layer.bias, h, weight_t)
            h = _forward_activation(h, layer)
            if outputs is not None:
                outputs.append(h)
        return h

    @torch.no_grad()
    def loss_and_grad(
        self, inp: torch.Tensor, target: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the number of scored entries; the gradient lands in ``self.grad``."""
        outputs = [inp]
        h = self.forward(inp, outputs)
        n_obs = observed.sum().clamp_min(1)
        residual = (h - target) * observed
        loss = (residual * residual).sum() / n_obs
        g = residual * 2 / n_obs
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            g = _backward_activation(g, outputs[i + 1], layer)
            torch.mm(g.t(), outputs[i], out=self._grads[id(layer.weight)])
            if layer.bias is not None:
                torch.sum(g, 0, out=self._grads[id(layer.bias)])
            if i > 0:
                g = g @ layer.weight
        return loss, n_obs

    @torch.no_grad()
    def update(
        self, inp: torch.Tensor, target: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loss, n_obs = self.loss_and_grad(inp, target, observed)
        self.steps += 1
        beta1, beta2 = self.betas
        grad = self.grad
        if self.weight_decay:
            grad = grad.add(self.flat, alpha=self.weight_decay)
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias1 = 1 - beta1**self.steps
        bias2_sqrt = (1 - beta2**self.steps) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-self.param_groups[0]["lr"] / bias1)
        return loss, n_obs

    def release(self) -> None:
        """Give every parameter its own storage again (the module as it was, trained)."""
        with torch.no_grad():
            for layer in self.layers:
                for p in _params(layer):
                    p.data = p.data.clone()


class HostMLPStep(MLPStep):
    """:class:`MLPStep` in NumPy, for parameters on the CPU: the same losses, gradients and
    Adam update, on NumPy views of the same flat buffer (the module's parameters stay its
    views, so the module sees every update). ``forward``, ``loss_and_grad`` and ``update``
    take NumPy arrays (``observed``: bool) and return a NumPy array, a NumPy scalar loss and
    the number of scored entries (an int).

    The products are NumPy's (its BLAS), not torch's, so the bits differ from
    :class:`MLPStep`'s by rounding; ``tests/test_training_step.py`` checks both against
    autograd in float64. Breast cancer's 30-64-32-15 network at batch 32, one thread on the
    2-core CPU: 111 us an update against 262 us in torch's operations and 639 us through
    autograd (``benchmarks/bench_training_step.py``: 2.3-3.7x torch's on the smallest
    tables, 1.4x on a 100-feature table at batch 256).
    """

    host = True

    def __init__(self, layers: list[LayerSpec], lr: float, weight_decay: float):
        super().__init__(layers, lr, weight_decay)
        self._flat = self.flat.numpy()
        self._grad = self.grad.numpy()
        self._exp_avg = self.exp_avg.numpy()
        self._exp_avg_sq = self.exp_avg_sq.numpy()
        self._scratch = np.empty_like(self._flat)
        self._weights = [layer.weight.detach().numpy() for layer in layers]
        biases = [layer.bias for layer in layers]
        self._biases = [None if b is None else b.detach().numpy() for b in biases]
        self._weight_grads = [self._grads[id(layer.weight)].numpy() for layer in layers]
        self._bias_grads = [None if b is None else self._grads[id(b)].numpy() for b in biases]

    def forward(self, inp: np.ndarray, outputs: list | None = None) -> np.ndarray:
        h = inp
        for layer, weight, bias in zip(self.layers, self._weights, self._biases, strict=True):
            h = h @ weight.T
            if bias is not None:
                h += bias
            h = _host_activation(h, layer)
            if outputs is not None:
                outputs.append(h)
        return h

    def loss_and_grad(
        self, inp: np.ndarray, target: np.ndarray, observed: np.ndarray
    ) -> tuple[np.ndarray, int]:
        outputs = [inp]
        h = self.forward(inp, outputs)
        n_obs = max(int(np.count_nonzero(observed)), 1)
        residual = (h - target) * observed
        loss = (residual * residual).sum() / n_obs
        g = residual * 2 / n_obs
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            g = _backward_activation(g, outputs[i + 1], layer, where=np.where)
            np.matmul(g.T, outputs[i], out=self._weight_grads[i])
            if self._bias_grads[i] is not None:
                np.add.reduce(g, axis=0, out=self._bias_grads[i])  # np.sum's wrapper: 2 us
            if i > 0:
                g = g @ self._weights[i]
        return loss, n_obs

    def update(
        self, inp: np.ndarray, target: np.ndarray, observed: np.ndarray
    ) -> tuple[np.ndarray, int]:
        loss, n_obs = self.loss_and_grad(inp, target, observed)
        self.steps += 1
        beta1, beta2 = self.betas
        grad, exp_avg, exp_avg_sq, scratch = (
            self._grad,
            self._exp_avg,
            self._exp_avg_sq,
            self._scratch,
        )
        if self.weight_decay:
            grad = grad + self.weight_decay * self._flat
        # torch's Adam: lerp, then mul and addcmul, then addcdiv over sqrt(v) / bias2 + eps
        np.subtract(grad, exp_avg, out=scratch)
        scratch *= 1 - beta1
        exp_avg += scratch
        exp_avg_sq *= beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        exp_avg_sq += scratch
        bias1 = 1 - beta1**self.steps
        bias2_sqrt = (1 - beta2**self.steps) ** 0.5
        np.sqrt(exp_avg_sq, out=scratch)
        scratch /= bias2_sqrt
        scratch += self.eps
        np.divide(exp_avg, scratch, out=scratch)
        scratch *= -self.param_groups[0]["lr"] / bias1
        self._flat += scratch
        return loss, n_obs


def _host_activation(h: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """``layer``'s activation of ``h`` in NumPy (in place where it can be)."""
    act = layer.activation
    if act == "relu":
        return np.maximum(h, 0, out=h)
    if act == "leaky_relu":
        return np.where(h > 0, h, h * layer.negative_slope)
    if act == "tanh":
        return np.tanh(h, out=h)
    if act == "sigmoid":
        return expit(h, out=h)
    return h


def _params(layer: LayerSpec) -> list[torch.Tensor]:
    return [layer.weight] if layer.bias is None else [layer.weight, layer.bias]
