"""What the launchers need from a module, computed once per module and device.

``mlp_layers`` walks the module and the weights may need a copy to contiguous fp32 on the
batch's device; neither should happen on every step, so :func:`step_plan` caches a
:class:`StepPlan` per module (weakly: the cache never keeps a module alive) and device. The
cached plan is rebuilt when the module's structure or any of its parameters changes
(replaced, moved, or modified in place, e.g. by further training).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn

from revml.kernels import activations as _act
from revml.model import mlp_layers

#: Kernel activation codes (constexpr) of the names in :data:`revml.model.ACTIVATIONS`.
ACTIVATION_CODES: dict[str, int] = {
    "identity": _act.IDENTITY.value,
    "relu": _act.RELU.value,
    "leaky_relu": _act.LEAKY_RELU.value,
    "tanh": _act.TANH.value,
    "sigmoid": _act.SIGMOID.value,
}
ACTIVATION_NAMES: dict[int, str] = {code: name for name, code in ACTIVATION_CODES.items()}


@dataclass(frozen=True)
class StepPlan:
    """The frozen MLP as the kernels read it: layers in execution order."""

    weights: list[torch.Tensor]  # (out, in) fp32, contiguous, on the plan's device
    biases: list[torch.Tensor | None]  # (out,) fp32, contiguous
    activations: list[int]  # ACTIVATION_CODES
    slopes: list[float]  # LeakyReLU negative slopes (unused by other activations)
    n_encoder: int  # the code is the output of layer n_encoder - 1
    n_features: int
    fingerprint: tuple


_PLANS: weakref.WeakKeyDictionary[nn.Module, dict[torch.device, StepPlan]] = (
    weakref.WeakKeyDictionary()
)


def _fingerprint(module: nn.Module) -> tuple:
    # Cheap (a few attribute reads per parameter); catches a replaced submodule or
    # parameter, a device or dtype move and in-place updates (the version counter).
    return (
        tuple(map(id, module.modules())),
        tuple((id(p), p.data_ptr(), p.dtype, p.device, p._version) for p in module.parameters()),
    )


def _as_kernel_tensor(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t.detach().to(device=device, dtype=torch.float32).contiguous()


def build_plan(module: nn.Module, device: torch.device) -> StepPlan:
    """A fresh :class:`StepPlan`; raises ``ValueError`` if ``module`` is not a fused MLP."""
    described = mlp_layers(module)
    if described is None:
        raise ValueError(
            f"the Triton path needs an MLP autoencoder: a module with `encoder` and "
            f"`decoder` nn.Sequential stacks of nn.Linear, each followed by at most one of "
            f"{tuple(ACTIVATION_CODES)} (see revml.model.mlp_layers); got "
            f"{type(module).__name__}. Use the reference path for other modules."
        )
    layers, n_encoder = described
    return StepPlan(
        weights=[_as_kernel_tensor(layer.weight, device) for layer in layers],
        biases=[
            None if layer.bias is None else _as_kernel_tensor(layer.bias, device)
            for layer in layers
        ],
        activations=[ACTIVATION_CODES[layer.activation] for layer in layers],
        slopes=[float(layer.negative_slope) for layer in layers],
        n_encoder=n_encoder,
        n_features=int(layers[0].weight.shape[1]),
        fingerprint=_fingerprint(module),
    )


def step_plan(module: nn.Module, device: torch.device | str) -> StepPlan:
    """The cached :class:`StepPlan` of ``module`` on ``device``, rebuilt if stale."""
    device = torch.device(device)
    per_device = _PLANS.setdefault(module, {})
    plan = per_device.get(device)
    if plan is None or plan.fingerprint != _fingerprint(module):
        plan = build_plan(module, device)
        per_device[device] = plan
    return plan
