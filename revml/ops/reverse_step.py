"""One reverse step on the fused kernels, registered as the custom op ``revml::reverse_step_``.

Kernels per step, for an MLP of L layers (see :mod:`revml.kernels`):

1. ``linear_forward`` for layers 0..L-2 (input dropout fused into layer 0's loads),
2. ``output_loss`` for layer L-1 (the loss gradient fused into its epilogue),
3. ``linear_backward`` for layers L-1..1 (the spherical gradient fused at the code),
4. ``input_update`` for layer 0 (direct term, masked Adam and clamp, in place),

plus two tiny reductions for the reported per-sample loss.

Registration and devices. :func:`launch_step` is registered with
``torch.library.triton_op`` (``x``, ``m``, ``v`` declared mutated), so on CUDA tensors it
is the op's implementation and ``torch.compile(fullgraph=True)`` traces through to the
kernels. A separate CPU kernel is registered for the op (at AutogradCPU, see below): with
``TRITON_INTERPRET=1`` (set before Triton is imported) it runs the same launchers, whose
kernels the interpreter then executes on the CPU tensors (that is how CI tests the
kernels); otherwise it runs :func:`revml.reference.reference_step` on the same layers, so
the op works on any CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from revml.errors import BackendUnavailableError
from revml.kernels.activations import IDENTITY
from revml.model import make_activation
from revml.ops.launch import (
    INTERPRETED,
    Dropout,
    input_update,
    linear_backward,
    linear_forward,
    output_loss,
)
from revml.ops.plan import ACTIVATION_NAMES, StepPlan, step_plan
from revml.prior import GaussianPrior
from revml.reference import (
    KERNEL_SCALARS,
    SPHERE_EPS,
    ReverseConfig,
    StepScalars,
    dropout_scale,
    dropout_threshold,
    kernel_scalars,
    reference_step,
    uses_prior,
)

__all__ = ["launch_step", "reverse_step", "triton_step"]


def _input_precision(device: torch.device) -> str:
    # TF32 only where PyTorch's own fp32 matmuls may use it
    # (torch.set_float32_matmul_precision("high") or "medium"); IEEE fp32 otherwise, and
    # always in the interpreter.
    if device.type == "cuda" and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return "ieee"


def launch_step(
    x: torch.Tensor,
    miss: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    rows: torch.Tensor,
    step: int,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor | None],
    activations: list[int],
    slopes: list[float],
    n_encoder: int,
    scalars: list[float],
    dropout_scale: float,
    seed: int,
    lo: torch.Tensor | None,
    hi: torch.Tensor | None,
    input_precision: str,
    prior_mean: torch.Tensor | None,
    prior_precision: torch.Tensor | None,
) -> torch.Tensor:
    """All kernels of one step; updates ``x``, ``m``, ``v`` in place, returns the loss (B,).

    Arguments are :func:`triton_step`'s, already validated, with the module flattened to
    its layers (:class:`revml.ops.plan.StepPlan`) and the config to its kernel scalars
    (``scalars``: :func:`revml.reference.kernel_scalars`, the fields named by
    :data:`~revml.reference.KERNEL_SCALARS`, in that order).
    ``x``, ``m``, ``v``: (B, D) fp32 contiguous; ``miss``: (B, D) bool contiguous;
    ``rows``: (B,) int64; ``lo``, ``hi``: (D,) fp32 or None. ``seed`` holds the seed's low
    64 bits as a signed int64 (all the dropout hash reads). ``prior_mean`` (D,) and
    ``prior_precision`` (D, D), fp32, or None: the Gaussian prior, whose gradient (one
    matrix product) joins the loss's direct term ``dr`` before the fused update.
    """
    p = StepScalars(*scalars)
    lr, beta1, beta2, eps, dropout = p.lr, p.beta1, p.beta2, p.eps, p.dropout
    missing_weight, sphere_weight, radius = p.missing_weight, p.sphere_weight, p.radius
    prior_weight = p.prior_weight
    n_layers = len(weights)
    n_features = x.shape[1]
    drop = None
    if dropout > 0:
        drop = Dropout.make(rows, seed, step, dropout_threshold(dropout), dropout_scale)
    with_sphere = sphere_weight != 0

    # Forward. saved[l] is what layer l's activation derivative reads: its int8 mask
    # (ReLU, LeakyReLU), its output (tanh, sigmoid) or nothing (identity).
    saved: list[torch.Tensor | None] = []
    code = None
    h = x
    for layer in range(n_layers - 1):
        h, mask = linear_forward(
            h,
            weights[layer],
            biases[layer],
            activations[layer],
            slopes[layer],
            dropout=drop if layer == 0 else None,
            input_precision=input_precision,
        )
        saved.append(
            mask if mask is not None else None if activations[layer] == IDENTITY.value else h
        )
        if with_sphere and layer == n_encoder - 1:
            code = h
    last = n_layers - 1
    grad, dr, sq_error = output_loss(
        h,
        weights[last],
        biases[last],
        activations[last],
        slopes[last],
        x,
        miss,
        missing_weight,
        input_precision=input_precision,
    )

    # Backward, input gradient only.
    sumsq = None
    for layer in range(last, 0, -1):
        at_code = with_sphere and layer == n_encoder
        grad, layer_sumsq = linear_backward(
            grad,
            weights[layer],
            activations[layer - 1],
            slopes[layer - 1],
            grad if saved[layer - 1] is None else saved[layer - 1],
            code=code if at_code else None,
            sphere_weight=sphere_weight,
            radius=radius,
            input_precision=input_precision,
        )
        if at_code:
            sumsq = layer_sumsq
    with_prior = prior_mean is not None and prior_precision is not None and prior_weight != 0
    if with_prior:
        # The kernel adds -dr to dL/dx: subtract the prior's gradient from dr.
        z = x - prior_mean
        zp = z @ prior_precision
        dr = dr - (2.0 * prior_weight / n_features) * zp
        prior_energy = (zp * z).sum(dim=1)
    bias1 = 1.0 - beta1**step
    bias2 = 1.0 - beta2**step
    input_update(
        grad,
        weights[0],
        dr,
        x,
        m,
        v,
        miss,
        beta1=beta1,
        beta2=beta2,
        step_size=lr / bias1,
        bias2_sqrt=bias2**0.5,
        eps=eps,
        dropout=drop,
        lo=lo,
        hi=hi,
        input_precision=input_precision,
    )

    loss = sq_error / n_features
    if sumsq is not None:
        norm = torch.sqrt(sumsq + SPHERE_EPS)
        loss = loss + sphere_weight * ((norm - radius) / radius) ** 2
    if with_prior:
        loss = loss + prior_weight * prior_energy / n_features
    return loss


reverse_step = torch.library.triton_op(
    "revml::reverse_step_", launch_step, mutates_args=("x", "m", "v")
)


class _LayerStack:
    """``act(F.linear(h, W, b))`` over layers: the encoder or decoder of a plan."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor | None, nn.Module]]):
        self.layers = layers

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        for weight, bias, act in self.layers:
            h = act(F.linear(h, weight, bias))
        return h


class _Autoencoder:
    """Duck-typed module for :func:`revml.reference.split_autoencoder`."""

    def __init__(self, encoder: _LayerStack, decoder: _LayerStack):
        self.encoder = encoder
        self.decoder = decoder


def _reverse_step_cpu(
    x,
    miss,
    m,
    v,
    rows,
    step,
    weights,
    biases,
    activations,
    slopes,
    n_encoder,
    scalars,
    dropout_scale,
    seed,
    lo,
    hi,
    input_precision,
    prior_mean,
    prior_precision,
):
    """The op on CPU tensors: the interpreted kernels, or else the reference maths."""
    if INTERPRETED:
        return launch_step(
            x,
            miss,
            m,
            v,
            rows,
            step,
            weights,
            biases,
            activations,
            slopes,
            n_encoder,
            scalars,
            dropout_scale,
            seed,
            lo,
            hi,
            input_precision,
            prior_mean,
            prior_precision,
        )
    layers = [
        (w, b, make_activation(ACTIVATION_NAMES[a], s))
        for w, b, a, s in zip(weights, biases, activations, slopes, strict=True)
    ]
    module = _Autoencoder(_LayerStack(layers[:n_encoder]), _LayerStack(layers[n_encoder:]))
    cfg = ReverseConfig(
        **dict(zip(KERNEL_SCALARS, scalars, strict=True)),
        dropout_rescale=dropout_scale != 1.0,
        seed=seed,
        prior=None if prior_mean is None else GaussianPrior(prior_mean, prior_precision),
    )
    return reference_step(module, x, miss, m, v, rows, step, cfg, lo, hi)


# The CPU kernel is registered at AutogradCPU, not only at CPU: backend (CPU) kernels run
# with autograd dispatch disabled, and the reference computes its gradient with autograd.
# The op has no backward of its own (it is an optimiser step), so nothing is lost there.
# The CPU registration serves calls that arrive below autograd (e.g. inference mode).
reverse_step.register_kernel("cpu")(_reverse_step_cpu)
_LIB = torch.library.Library("revml", "IMPL")
_LIB.impl("reverse_step_", _reverse_step_cpu, "AutogradCPU")


def _check_state(
    name: str, t: torch.Tensor, shape: torch.Size, device: torch.device, dtype: torch.dtype
) -> None:
    if t.shape != shape or t.device != device or t.dtype != dtype or not t.is_contiguous():
        raise ValueError(
            f"{name} must be a contiguous {dtype} tensor of shape "
            f"{tuple(shape)} on {device}, got {t.dtype} {tuple(t.shape)} on "
            f"{t.device} (contiguous={t.is_contiguous()})"
        )


def _bound(
    name: str, bound: torch.Tensor | None, n_features: int, device: torch.device
) -> torch.Tensor | None:
    if bound is None:
        return None
    bound = torch.as_tensor(bound, device=device).to(torch.float32).reshape(-1)
    if bound.numel() != n_features:
        raise ValueError(
            f"{name} must have one value per feature ({n_features}), got {bound.numel()}"
        )
    return bound.contiguous()


def _prior_tensors(cfg: ReverseConfig, x: torch.Tensor) -> GaussianPrior | None:
    """The config's prior as contiguous tensors of ``x``'s device and dtype, or None (a
    no-op move for a prior already there, as :class:`revml.ReverseImputer` builds it)."""
    if not uses_prior(cfg):
        return None
    return cfg.prior.to(x.device, x.dtype)


def run_plan(
    plan: StepPlan,
    x: torch.Tensor,
    miss: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    rows: torch.Tensor,
    step: int,
    cfg: ReverseConfig,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`triton_step` on a prepared plan (no module lookup: the form to compile)."""
    seed = cfg.seed & 0xFFFFFFFFFFFFFFFF
    prior = _prior_tensors(cfg, x)
    return reverse_step(
        x,
        miss,
        m,
        v,
        rows,
        step,
        plan.weights,
        plan.biases,
        plan.activations,
        plan.slopes,
        plan.n_encoder,
        kernel_scalars(cfg),
        dropout_scale(cfg),
        seed - (1 << 64) if seed >= 1 << 63 else seed,
        lo,
        hi,
        _input_precision(x.device),
        None if prior is None else prior.mean,
        None if prior is None else prior.precision,
    )


def triton_step(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    rows: torch.Tensor,
    step: int,
    cfg: ReverseConfig,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> torch.Tensor:
    """One reverse step on the fused Triton kernels; drop-in for
    :func:`revml.reference.reference_step`.

    Updates the missing entries of ``x`` and their Adam moments ``m``, ``v`` in place and
    returns the per-sample loss (B,).

    Parameters
    ----------
    module : nn.Module
        An MLP autoencoder accepted by :func:`revml.model.mlp_layers`; its weights are read
        once into a cached plan (see :mod:`revml.ops.plan`).
    x, m, v : Tensor
        (B, D) contiguous float32 on one device, updated in place.
    miss : Tensor
        (B, D) contiguous bool, True where missing.
    rows : Tensor
        (B,) integer global sample indices (seed the dropout hash).
    step : int
        1-based Adam step.
    cfg : ReverseConfig
    lo, hi : Tensor, optional
        (D,) clamp bounds.

    Raises
    ------
    ValueError
        If ``module`` is not an MLP autoencoder, or a tensor has the wrong shape, dtype,
        device or layout, or ``cfg.dropout`` is outside [0, 1).

    Examples
    --------
    >>> import torch
    >>> from revml.model import MLPAutoencoder
    >>> from revml.reference import ReverseConfig
    >>> from revml.ops import triton_step
    >>> ae = MLPAutoencoder(6, hidden=(4,), bottleneck=2)
    >>> x, miss = torch.rand(3, 6), torch.rand(3, 6) < 0.3
    >>> m, v = torch.zeros_like(x), torch.zeros_like(x)
    >>> triton_step(ae, x, miss, m, v, torch.arange(3), 1, ReverseConfig()).shape
    torch.Size([3])
    """
    if x.dim() != 2:
        raise ValueError(f"x must be a (batch, features) matrix, got shape {tuple(x.shape)}")
    plan = step_plan(module, x.device)
    if x.shape[1] != plan.n_features:
        raise ValueError(f"x has {x.shape[1]} features, the module expects {plan.n_features}")
    _check_state("x", x, x.shape, x.device, torch.float32)
    _check_state("m", m, x.shape, x.device, torch.float32)
    _check_state("v", v, x.shape, x.device, torch.float32)
    _check_state("miss", miss, x.shape, x.device, torch.bool)
    if rows.shape != (x.shape[0],) or rows.dtype.is_floating_point or rows.dtype.is_complex:
        raise ValueError(
            f"rows must be ({x.shape[0]},) integer sample indices, got "
            f"{rows.dtype} {tuple(rows.shape)}"
        )
    if int(step) < 1:
        raise ValueError(f"step is 1-based, got {step}")
    dropout_threshold(cfg.dropout)  # validates the rate
    if cfg.precision != "float32":
        raise BackendUnavailableError(
            f"the Triton kernels run float32 (TF32 where torch's matmul precision allows); "
            f"precision={cfg.precision!r} needs backend='reference' or 'compile'"
        )
    rows = rows.to(device=x.device, dtype=torch.int64).contiguous()
    lo = _bound("lo", lo, plan.n_features, x.device)
    hi = _bound("hi", hi, plan.n_features, x.device)
    if x.shape[0] == 0:  # an empty grid is not a valid launch
        return torch.zeros(0, dtype=x.dtype, device=x.device)
    return run_plan(plan, x, miss, m, v, rows, int(step), cfg, lo, hi)
