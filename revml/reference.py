"""Reverse training in plain PyTorch: the reference maths.

This module is the single definition of what one reverse step computes. It is used three
ways, so they can never drift apart: as the ``"reference"`` execution path (CPU and GPU),
as the oracle the fused kernels are tested against (run in float64), and as the baseline
of the benchmarks.

One reverse step for a batch of samples ``x`` (B, D) whose missing entries ``miss`` are the
trainable parameters, through a frozen autoencoder ``decode(encode(.))``:

1. Input dropout: ``x_in = x * keep / (1 - p)`` (or ``x * keep`` with
   ``dropout_rescale=False``: hiding entries, as masked training does) where ``keep``
   comes from a counter-based hash of (seed, sample index, step, feature index)
   (:func:`dropout_keep`), so a sample's mask never depends on which batch it is in.
2. ``h = encode(x_in)``, ``r = decode(h)``.
3. Per-sample loss (summed over the batch, so samples stay independent)::

       L = 1/D * sum_j w_j (r_j - x_j)^2  +  lambda * ((||h|| - R) / R)^2

   with ``w_j = missing_weight`` on missing entries and 1 on observed ones, and
   ``||h|| = sqrt(sum h^2 + 1e-12)``. The target ``x`` is the current input, so the
   gradient also pulls the missing entries towards the reconstruction: the input should be
   a fixed point of the autoencoder. With a Gaussian prior (``cfg.prior``,
   :mod:`revml.prior`) the loss also has ``prior_weight / D * (x - mu)^T P (x - mu)``.
4. Adam on the missing entries only (the formula of ``torch.optim.Adam``), then an
   optional clamp to the data range. Observed entries, and their Adam moments, are never
   written.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from . import precision
from .prior import GaussianPrior

# Norm epsilon inside the sqrt of ||h||: keeps the sphere gradient finite at h = 0.
SPHERE_EPS = 1e-12
#: Rows one forward of the averaged clean pass takes at most: a batch shorter than this
#: runs several dropout masks in one call (16 masks of 300 rows: 2 calls, 13 masks and 3).
CLEAN_ROWS = 4096

# Constants of the 32-bit integer hash (Chris Wellons' "lowbias32" mixer, public domain).
_MIX_M1 = 0x7FEB352D
_MIX_M2 = 0x846CA68B
_SEED_SALT = 0x9E3779B9
_COLUMN_SALT = 0x632BE5AB
# Separate the restart-noise stream from the dropout stream of the same seed, and the two
# uniforms of Box-Muller from each other.
_NOISE_SALT = 0x1B873593
_NOISE_SALT2 = 0x5BD1E995
# splitmix64's increment (2**64 / golden ratio, odd): restart r's seed is seed + r * this.
_RESTART_STEP = 0x9E3779B97F4A7C15


def _to_int32(value: int) -> int:
    """Bits of a uint32 as a Python int in int32 range."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _shr(h: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of uint32 bits held in an int32 tensor."""
    return (h >> s) & ((1 << (32 - s)) - 1)


def mix32(h: torch.Tensor) -> torch.Tensor:
    """The lowbias32 integer mixer on uint32 bits stored in an int32 tensor.

    Multiplication wraps modulo 2**32 in PyTorch's int32 kernels (CPU and CUDA), which is
    exactly uint32 arithmetic on the bits; the test suite checks this against a pure-Python
    implementation so a platform where it did not hold would fail loudly.
    """
    h = h ^ _shr(h, 16)
    h = h * _to_int32(_MIX_M1)
    h = h ^ _shr(h, 15)
    h = h * _to_int32(_MIX_M2)
    return h ^ _shr(h, 16)


def _seed_key(seed: int) -> torch.Tensor:
    """The seed's share of every row key: int32 (1,), its two 32-bit words mixed."""
    k = mix32(torch.tensor([_to_int32(seed) ^ _to_int32(_SEED_SALT)], dtype=torch.int32))
    return mix32(k ^ _to_int32(seed >> 32))


def row_keys(seed: int, rows: torch.Tensor, step: int) -> torch.Tensor:
    """Per-sample hash keys for one step: int32 (B,) from global sample indices ``rows``."""
    k = _seed_key(seed)
    r = rows.to(torch.int64) & 0xFFFFFFFF
    r = torch.where(r >= 1 << 31, r - (1 << 32), r).to(torch.int32)
    k = mix32(k.to(rows.device) ^ r)
    return mix32(k ^ _to_int32(step))


def column_keys(n_features: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Per-feature hash keys: int32 (D,)."""
    cols = torch.arange(n_features, dtype=torch.int32, device=device)
    return mix32(cols ^ _to_int32(_COLUMN_SALT))


def dropout_threshold(p: float) -> int:
    """Integer threshold on the top 24 hash bits: an entry is kept iff bits >= threshold."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    return round(p * (1 << 24))


def keep_from_keys(rkeys: torch.Tensor, ckeys: torch.Tensor, p: float) -> torch.Tensor:
    """Boolean keep-mask (B, D) from per-sample keys (B,) and per-feature keys (D,)."""
    return _shr(mix32(rkeys[:, None] ^ ckeys), 8) >= dropout_threshold(p)


def dropout_keep(
    seed: int, rows: torch.Tensor, step: int, n_features: int, p: float
) -> torch.Tensor:
    """Boolean keep-mask (B, D) of input dropout for one step.

    Entry (i, j) is a pure function of ``(seed, rows[i], step, j)``.
    """
    return keep_from_keys(row_keys(seed, rows, step), column_keys(n_features, rows.device), p)


def restart_seed(seed: int, restart: int) -> int:
    """Seed of the dropout masks of restart ``restart`` (restart 0 keeps ``seed``).

    A Weyl step (splitmix64's increment, odd, so distinct restarts get distinct seeds),
    kept in [0, 2**63): the backends hash all 64 bits (:func:`row_keys`).
    """
    if restart < 0:
        raise ValueError(f"restart must be >= 0, got {restart}")
    if restart == 0:
        return seed
    return (seed + restart * _RESTART_STEP) & ((1 << 63) - 1)


def restart_rows(seed: int, rows: torch.Tensor, restart: int) -> torch.Tensor:
    """Sample keys (B,) int64 that give restart ``restart``'s dropout under ``seed``.

    A row's key is ``mix32(seed_key ^ row)`` (:func:`row_keys`), so XOR-ing the row with
    the difference of two seeds' keys moves it from one seed to the other, exactly:
    ``row_keys(seed, restart_rows(seed, rows, r), step)`` equals
    ``row_keys(restart_seed(seed, r), rows, step)`` at every step, on every path (they
    all hash the low 32 bits of the row). Restarts can then share one batch, and one
    ``cfg.seed``, with the masks each would draw alone.

    >>> rows = torch.arange(4)
    >>> torch.equal(row_keys(7, restart_rows(7, rows, 2), 5), row_keys(restart_seed(7, 2), rows, 5))
    True
    """
    shift = int((_seed_key(seed) ^ _seed_key(restart_seed(seed, restart))).item()) & 0xFFFFFFFF
    return (rows.to(torch.int64) & 0xFFFFFFFF) ^ shift


def _unit_uniform(bits: torch.Tensor) -> torch.Tensor:
    """float64 uniforms in (0, 1) from the top 24 bits of a hash, never 0 (log-safe)."""
    return (_shr(bits, 8).to(torch.float64) + 0.5) / (1 << 24)


def init_noise(
    seed: int,
    rows: torch.Tensor,
    n_features: int,
    restart: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard normal noise (B, D) float32 that perturbs restart ``restart``'s start.

    Entry (i, j) is a pure function of ``(seed, restart, rows[i], j)``: counter-based like
    :func:`dropout_keep`, so a sample's noise does not depend on the batch, the chunk or
    the ``row_offset`` split it is imputed in. Two 24-bit uniforms per entry go through
    Box-Muller in float64, so the values agree across devices up to the last float32 bit.

    Examples
    --------
    >>> z = init_noise(0, torch.arange(5), 3, restart=1)
    >>> z.shape, z.dtype
    (torch.Size([5, 3]), torch.float32)
    >>> torch.equal(z[2:], init_noise(0, torch.arange(2, 5), 3, restart=1))
    True
    """
    rows = rows.to(device)
    rkeys = mix32(row_keys(seed, rows, restart) ^ _to_int32(_NOISE_SALT))
    bits1 = mix32(rkeys[:, None] ^ column_keys(n_features, rows.device))
    bits2 = mix32(bits1 ^ _to_int32(_NOISE_SALT2))
    u1, u2 = _unit_uniform(bits1), _unit_uniform(bits2)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * torch.pi) * u2)
    return z.to(torch.float32)


#: Marks the :class:`ReverseConfig` fields the fused kernels read as float scalars: the
#: custom op takes them as one list, in field order (:func:`kernel_scalars`).
KERNEL = {"kernel": True}


@dataclass(frozen=True)
class ReverseConfig:
    """Hyper-parameters of the reverse loop (see :class:`revml.ReverseImputer`).

    The defaults are the estimator's (``revml.params``); ``radius``, ``seed`` and the
    prior are what a fit learns or a transform draws.
    """

    n_steps: int = 75
    lr: float = field(default=0.01, metadata=KERNEL)
    beta1: float = field(default=0.9, metadata=KERNEL)
    beta2: float = field(default=0.999, metadata=KERNEL)
    eps: float = field(default=1e-8, metadata=KERNEL)
    dropout: float = field(default=0.45, metadata=KERNEL)
    #: True: inverted dropout, kept entries scaled by 1 / (1 - p) (the seed's form). False:
    #: dropped entries are hidden (set to 0) and kept ones pass unchanged, which is what an
    #: autoencoder trained with masking (hidden entries = 0) expects.
    dropout_rescale: bool = False
    missing_weight: float = field(default=0.3, metadata=KERNEL)
    sphere_weight: float = field(default=0.0, metadata=KERNEL)
    radius: float = field(default=1.0, metadata=KERNEL)
    seed: int = 0
    #: Weight of the Gaussian prior's energy in the loss (0: no prior term).
    prior_weight: float = field(default=0.0, metadata=KERNEL)
    prior: GaussianPrior | None = None
    #: Standard deviation (scaled units) of the noise on the start of restarts 1, 2, ...
    restart_noise: float = 0.1
    #: Input-dropout masks the clean pass averages its output over (1: one plain pass).
    clean_samples: int = 16
    #: "float32", or "bfloat16": the network's products in bfloat16, float32 accumulation
    #: (:mod:`revml.precision`); x, the loss and the Adam state stay float32.
    precision: str = "float32"


KERNEL_SCALARS = tuple(f.name for f in fields(ReverseConfig) if f.metadata.get("kernel"))
#: The kernel scalars by name, as the op's launcher reads them.
StepScalars = namedtuple("StepScalars", KERNEL_SCALARS)


def kernel_scalars(cfg: ReverseConfig) -> list[float]:
    """The config's kernel scalars (:data:`KERNEL_SCALARS`) as floats, in field order."""
    return [float(getattr(cfg, name)) for name in KERNEL_SCALARS]


def uses_prior(cfg: ReverseConfig) -> bool:
    """Whether the loss has a prior term."""
    return cfg.prior is not None and cfg.prior_weight != 0


def dropout_scale(cfg: ReverseConfig) -> float:
    """Factor on the kept inputs: ``1 / (1 - p)`` for inverted dropout, 1 for hiding."""
    return 1.0 / (1.0 - cfg.dropout) if cfg.dropout_rescale else 1.0


def split_autoencoder(module: nn.Module) -> tuple[Callable, Callable | None]:
    """``(encode, decode)`` of an autoencoder module.

    Modules with ``encoder`` and ``decoder`` attributes expose their bottleneck; any other
    module is used whole, as ``encode`` with no ``decode`` (the spherical term then needs a
    bottleneck and cannot be used).
    """
    encoder = getattr(module, "encoder", None)
    decoder = getattr(module, "decoder", None)
    if callable(encoder) and callable(decoder):
        return encoder, decoder
    return module, None


def reverse_loss(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    keep: torch.Tensor | None,
    cfg: ReverseConfig,
) -> torch.Tensor:
    """Per-sample reverse loss (B,) of :mod:`revml.reference`'s docstring."""
    encode, decode = split_autoencoder(module)
    x_in = x if keep is None else x * keep.to(x.dtype) * dropout_scale(cfg)
    if decode is None and cfg.sphere_weight:
        raise ValueError(
            "sphere_weight > 0 needs an autoencoder with `encoder` and "
            "`decoder` attributes; set sphere_weight=0 for this module"
        )
    with precision.compute(cfg.precision, x.device.type):
        h = encode(x_in) if decode is not None else None
        r = decode(h) if decode is not None else encode(x_in)
    h = None if h is None else h.to(x.dtype)
    r = r.to(x.dtype)
    w = torch.where(miss, cfg.missing_weight, 1.0).to(x.dtype)
    loss = (w * (r - x) ** 2).sum(dim=1) / x.shape[1]
    if h is not None and cfg.sphere_weight:
        norm = torch.sqrt((h * h).sum(dim=1) + SPHERE_EPS)
        loss = loss + cfg.sphere_weight * ((norm - cfg.radius) / cfg.radius) ** 2
    if uses_prior(cfg):
        loss = loss + cfg.prior_weight * cfg.prior.energy(x) / x.shape[1]
    return loss


def reverse_grad(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    rows: torch.Tensor,
    step: int,
    cfg: ReverseConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input gradient of the summed loss and the per-sample loss, by autograd.

    Only ``x`` requires a gradient, so autograd never computes a weight gradient.
    """
    keep = None
    if cfg.dropout > 0:
        keep = dropout_keep(cfg.seed, rows, step, x.shape[1], cfg.dropout)
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        loss = reverse_loss(module, leaf, miss, keep, cfg)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
    return grad, loss.detach()


def adam_update(
    x: torch.Tensor,
    grad: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    miss: torch.Tensor,
    bias1: float | torch.Tensor,
    bias2: float | torch.Tensor,
    cfg: ReverseConfig,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Functional masked Adam: new ``(x, m, v)``; observed entries are passed through.

    ``bias1 = 1 - beta1**step`` and ``bias2 = 1 - beta2**step`` may be 0-dim tensors so a
    compiled caller does not specialise on the step number.
    """
    g = torch.where(miss, grad, 0.0)
    m_new = cfg.beta1 * m + (1.0 - cfg.beta1) * g
    v_new = cfg.beta2 * v + (1.0 - cfg.beta2) * g * g
    denom = v_new.sqrt() / bias2**0.5 + cfg.eps
    x_new = x - (cfg.lr / bias1) * m_new / denom
    if lo is not None:
        x_new = torch.maximum(x_new, lo)
    if hi is not None:
        x_new = torch.minimum(x_new, hi)
    return torch.where(miss, x_new, x), torch.where(miss, m_new, m), torch.where(miss, v_new, v)


@torch.no_grad()
def masked_adam_(
    x: torch.Tensor,
    grad: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    miss: torch.Tensor,
    step: int,
    cfg: ReverseConfig,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> None:
    """Adam update of the missing entries of ``x`` in place (``torch.optim.Adam``'s formula).

    Observed entries of ``x``, ``m`` and ``v`` are left exactly as they were.
    """
    bias1 = 1.0 - cfg.beta1**step
    bias2 = 1.0 - cfg.beta2**step
    x_new, m_new, v_new = adam_update(x, grad, m, v, miss, bias1, bias2, cfg, lo, hi)
    x.copy_(x_new)
    m.copy_(m_new)
    v.copy_(v_new)


def reference_step(
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
    """One reverse step in place on ``x``, ``m``, ``v``; returns the per-sample loss."""
    grad, loss = reverse_grad(module, x, miss, rows, step, cfg)
    masked_adam_(x, grad, m, v, miss, step, cfg, lo, hi)
    return loss


@torch.no_grad()
def clean_pass(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    cfg: ReverseConfig | None = None,
    rows: torch.Tensor | None = None,
    samples: int = 1,
) -> torch.Tensor:
    """One more pass through the autoencoder; its output replaces the missing entries.

    With ``samples > 1`` (and ``cfg.dropout > 0``) the pass is averaged over ``samples``
    input-dropout masks, those of steps ``cfg.n_steps + 1 ...`` of the loop's counter-based
    hash: the same noise the loop optimised under, averaged out (Monte Carlo dropout).

    With a prior in ``cfg``, the output counts as an observation of the missing entries
    (weight 1) combined with the prior (weight ``cfg.prior_weight``): the missing entries
    minimise ``||x_m - out_m||^2 + prior_weight * energy(x)``
    (:meth:`revml.prior.GaussianPrior.combine`), the loss's two terms at the clean output.
    """
    if cfg is not None and cfg.precision != "float32":
        module = _in_precision(module, cfg.precision, x)
    if samples <= 1 or cfg is None or cfg.dropout <= 0:
        out = torch.where(miss, module(x), x)
    elif rows is None:
        raise ValueError("a clean pass averaged over dropout masks needs the sample indices")
    else:
        # Masks share one forward, up to CLEAN_ROWS rows: a small batch's passes cost
        # their calls, not their arithmetic. The sum keeps the masks' order.
        def masked(k: int) -> torch.Tensor:
            keep = dropout_keep(cfg.seed, rows, cfg.n_steps + 1 + k, x.shape[1], cfg.dropout)
            return x * keep.to(x.dtype) * dropout_scale(cfg)

        group = max(1, CLEAN_ROWS // max(1, x.shape[0]))
        total = torch.zeros_like(x)
        for first in range(0, samples, group):
            batch = torch.cat([masked(k) for k in range(first, min(first + group, samples))])
            for part in module(batch).split(x.shape[0]):
                total = total + part
        out = torch.where(miss, total / samples, x)
    if cfg is not None and uses_prior(cfg):
        out = cfg.prior.combine(out, x, miss, cfg.prior_weight)
    return out


def _in_precision(module: nn.Module, name: str, x: torch.Tensor):
    """``module`` called in the precision ``name``, its output in ``x``'s dtype."""

    def call(inp: torch.Tensor) -> torch.Tensor:
        with precision.compute(name, x.device.type):
            return module(inp).to(x.dtype)

    return call


def reverse_impute(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    rows: torch.Tensor,
    cfg: ReverseConfig,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
    step_fn: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``cfg.n_steps`` reverse steps from ``x`` (missing entries already initialised).

    Returns the optimised batch and the final per-sample loss. ``step_fn`` replaces
    :func:`reference_step` (same signature) for the other execution paths.
    """
    step_fn = step_fn or reference_step
    x = x.clone()
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    loss = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for step in range(1, cfg.n_steps + 1):
        loss = step_fn(module, x, miss, m, v, rows, step, cfg, lo, hi)
    return x, loss
