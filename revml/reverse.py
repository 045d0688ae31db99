"""Batched imputation through a frozen autoencoder: reverse training and the direct pass."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .backends import make_step_fn, resolve_backend
from .reference import ReverseConfig, clean_pass, init_noise, restart_rows, reverse_impute

INITS = ("median", "zeros", "mean", "direct")

# Activation memory one reverse step may use per batch: bounds the automatic batch size.
_CPU_BUDGET_BYTES = 256 * 2**20
# On the CPU larger batches stop paying once the GEMM is compute-bound (~2k rows measured
# for the MNIST-sized AE on 2 cores); a GPU wants as many rows as memory allows.
_CPU_MAX_BATCH = 4096
_GPU_MAX_BATCH = 262_144


def auto_batch_size(
    module: nn.Module, n_features: int, device: torch.device, n_rows: int | None = None
) -> int:
    """Rows per batch so one reverse step's tensors fit a memory budget.

    With ``n_rows`` (the rows of the call) the rows are split into as few batches as the
    budget allows, all of the same size: the compiled paths pad the last batch to the
    full size, so a batch of the largest size followed by a short one computes padding
    (10,000 rows under a 3,721-row budget: 3 batches of 3,334 rows, not 3 of 3,721).

    >>> from revml.model import MLPAutoencoder
    >>> ae = MLPAutoencoder(784, hidden=(1024, 512), bottleneck=64)
    >>> [auto_batch_size(ae, 784, torch.device("cpu"), n) for n in (None, 100, 4_096, 10_000)]
    [3721, 100, 2048, 3334]
    """
    widths = [p.shape[0] for p in module.parameters() if p.ndim == 2]
    # Forward activations (kept for backward) and their gradients, plus x, m, v, mask,
    # reconstruction and gradient of the input: float32.
    per_row = 4 * (3 * sum(widths or [n_features]) + 8 * n_features)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, cap = free // 4, _GPU_MAX_BATCH
    else:
        budget, cap = _CPU_BUDGET_BYTES, _CPU_MAX_BATCH
    largest = int(max(1, min(cap, budget // per_row)))
    if not n_rows:
        return largest
    return math.ceil(n_rows / math.ceil(n_rows / largest))


@dataclass
class ReverseOutput:
    """Result of :func:`impute_reverse` on scaled data."""

    x: torch.Tensor  # after the reverse loop (N, D)
    x_clean: torch.Tensor | None  # after the clean pass, if requested
    loss: torch.Tensor  # final per-sample loss (N,)
    backend: str  # the path that ran
    n_fallback: int = 0  # rows whose loop diverged and kept their starting values


def initial_values(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    init: str,
    means: torch.Tensor,
    medians: torch.Tensor | None = None,
    direct_fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x`` with its missing entries initialised by ``init`` (one of :data:`INITS`).

    ``"direct"`` is the autoencoder's output for the row with its missing entries set to
    ``direct_fill`` (default ``means``; 0 for an autoencoder trained with masking).
    """
    if init == "zeros":
        return torch.where(miss, torch.zeros((), dtype=x.dtype, device=x.device), x)
    if init == "median":
        if medians is None:
            raise ValueError("init='median' needs the column medians")
        return torch.where(miss, medians.to(x.dtype), x)
    if init == "mean":
        return torch.where(miss, means.to(x.dtype), x)
    if init == "direct":
        fill = means if direct_fill is None else direct_fill
        return clean_pass(module, torch.where(miss, fill.to(x.dtype), x), miss)
    raise ValueError(f"unknown init {init!r}; expected one of {INITS}")


def _batches(n: int, batch_size: int, verbose: bool, desc: str):
    starts = range(0, n, batch_size)
    return tqdm(starts, desc=desc, disable=not verbose, unit="batch")


@torch.no_grad()
def reconstruct(
    module: nn.Module, x: torch.Tensor, *, batch_size: int, device: torch.device
) -> torch.Tensor:
    """The autoencoder's whole output for complete rows ``x`` (N, D, CPU), in batches."""
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], batch_size):
        out[start : start + batch_size] = module(x[start : start + batch_size].to(device)).cpu()
    return out


def impute_direct(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    fill: torch.Tensor,
    *,
    batch_size: int,
    device: torch.device,
    verbose: bool = False,
) -> torch.Tensor:
    """One pass of the damaged rows (missing entries = ``fill``) through the autoencoder.

    ``x`` (N, D) and ``miss`` live on the CPU; the result is on the CPU. A row whose output
    is not finite (an autoencoder that emits NaN/inf) keeps ``fill`` in its missing entries,
    with a ``RuntimeWarning`` giving the count.
    """
    out = torch.empty_like(x)
    fill = fill.to(device)
    n_fallback = 0
    for start in _batches(x.shape[0], batch_size, verbose, "direct imputation"):
        xb = x[start : start + batch_size].to(device)
        mb = miss[start : start + batch_size].to(device)
        filled = torch.where(mb, fill.to(xb.dtype), xb)
        xc = clean_pass(module, filled, mb)
        diverged = ~torch.isfinite(torch.where(mb, xc, 0.0)).all(dim=1)
        if diverged.any():
            xc = torch.where(diverged[:, None], filled, xc)
            n_fallback += int(diverged.sum())
        out[start : start + batch_size] = xc.cpu()
    if n_fallback:
        warnings.warn(
            f"the autoencoder's output was not finite for {n_fallback} of {x.shape[0]} rows; "
            "those rows keep their fill values (direct strategy)",
            RuntimeWarning,
            stacklevel=3,
        )
    return out


def _clamped(
    x: torch.Tensor, miss: torch.Tensor, lo: torch.Tensor | None, hi: torch.Tensor | None
) -> torch.Tensor:
    """``x`` with its missing entries clamped to ``[lo, hi]`` (either may be None)."""
    if lo is None and hi is None:
        return x
    return torch.where(miss, x.clamp(lo, hi), x)


def impute_reverse(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    cfg: ReverseConfig,
    *,
    restart: int = 0,
    **kwargs,
) -> ReverseOutput:
    """One restart of the reverse loop: :func:`impute_restarts` with ``restarts=[restart]``
    (its keywords, the same)."""
    return impute_restarts(module, x, miss, cfg, restarts=[restart], **kwargs)[0]


def impute_restarts(
    module: nn.Module,
    x: torch.Tensor,
    miss: torch.Tensor,
    cfg: ReverseConfig,
    *,
    restarts: Sequence[int] = (0,),
    init: str,
    means: torch.Tensor,
    medians: torch.Tensor | None = None,
    lo: torch.Tensor | None,
    hi: torch.Tensor | None,
    backend: str,
    batch_size: int,
    device: torch.device,
    clean: bool,
    verbose: bool = False,
    row_offset: int = 0,
    direct_fill: torch.Tensor | None = None,
) -> list[ReverseOutput]:
    """Reverse training of the missing entries of ``x`` (N, D, CPU) through ``module``,
    once per restart in ``restarts``: a :class:`ReverseOutput` each, in that order.

    Row ``i`` is sample ``row_offset + i`` for the counter-based dropout, so a sample's
    result does not depend on the batch it is in. Rows are processed in batches on
    ``device``, the restarts side by side in one batch of ``batch_size`` rows at most
    (``batch_size // len(restarts)`` samples, each once per restart: one GEMM a layer
    instead of one per restart); the compiled paths get the last batch padded to full
    size with fully observed rows (nothing to optimise there) so they see one shape.

    Restart ``r >= 1`` runs the same loop from a perturbed start: ``cfg.restart_noise``
    times :func:`~revml.reference.init_noise` (keyed by ``cfg.seed``, ``r``, sample and
    feature) is added to the initial missing entries, which are then clamped to
    ``lo``/``hi``, and the dropout masks are those of
    :func:`~revml.reference.restart_seed` (drawn under ``cfg.seed`` through
    :func:`~revml.reference.restart_rows`). Restart 0 is the plain loop. Only the start and
    the masks change, so every backend runs restarts, and a restart's result is the one it
    has alone, up to the float rounding of a GEMM's row count.

    ``direct_fill`` is what the missing entries hold for ``init="direct"``'s pass (see
    :func:`initial_values`); ``cfg.clean_samples > 1`` averages the clean pass over that many
    input-dropout masks (:func:`~revml.reference.clean_pass`).
    """
    restarts = [int(r) for r in restarts]
    if not restarts or min(restarts) < 0:
        raise ValueError(f"restarts must be a non-empty list of integers >= 0, got {restarts}")
    k = len(restarts)
    restart_noise = float(cfg.restart_noise)
    n, d = x.shape
    per = max(1, batch_size // k)  # samples a batch, each once per restart
    if k > 1 and n:  # batches of one size (see auto_batch_size)
        per = math.ceil(n / math.ceil(n / per))
    name = resolve_backend(backend, module, device, work=x.shape[0] * cfg.n_steps * k)
    step_fn = make_step_fn(name, module, cfg, device)
    # "auto" must never fail where the reference works: a compile error (no C++ compiler,
    # an unsupported module) falls back to eager with a warning, on the first batch.
    guard_compile = backend == "auto" and name == "compile"
    outs = [torch.empty_like(x) for _ in restarts]
    outs_clean = [torch.empty_like(x) for _ in restarts] if clean else None
    losses = [torch.empty(n, dtype=x.dtype) for _ in restarts]
    means = means.to(device)
    medians = None if medians is None else medians.to(device)
    direct_fill = None if direct_fill is None else direct_fill.to(device)
    lo = None if lo is None else lo.to(device)
    hi = None if hi is None else hi.to(device)
    pad_to_full = name != "reference" and n > per
    n_fallback = [0] * k
    n_clean_fallback = [0] * k
    desc = f"reverse imputation ({name})" + (f", {k} restarts" if k > 1 else "")
    if restarts != [0] and k == 1:
        desc += f", restart {restarts[0]}"
    for start in _batches(n, per, verbose, desc):
        stop = min(start + per, n)
        size = stop - start
        width = per if pad_to_full else size
        xb = x[start:stop].to(device)
        mb = miss[start:stop].to(device)
        rows = torch.arange(row_offset + start, row_offset + stop, device=device)
        if width > size:
            xb = torch.cat([xb, torch.zeros(width - size, d, dtype=xb.dtype, device=device)])
            mb = torch.cat([mb, torch.zeros(width - size, d, dtype=torch.bool, device=device)])
            rows = torch.cat([rows, rows.new_zeros(width - size)])
        x0 = initial_values(module, xb, mb, init, means, medians, direct_fill)
        if not torch.isfinite(x0).all():  # e.g. a direct start from an AE that emits NaN
            x0 = torch.where(torch.isfinite(x0), x0, means.to(x0.dtype))
        starts, keys = [], []
        for r in restarts:
            xr0 = x0
            if r > 0 and restart_noise > 0:
                noise = init_noise(cfg.seed, rows, d, r, device).to(x0.dtype)
                xr0 = _clamped(torch.where(mb, x0 + restart_noise * noise, x0), mb, lo, hi)
            starts.append(xr0)
            keys.append(restart_rows(cfg.seed, rows, r))
        x_all, m_all, keys = torch.cat(starts), mb.repeat(k, 1), torch.cat(keys)
        try:
            xr, loss = reverse_impute(module, x_all, m_all, keys, cfg, lo, hi, step_fn=step_fn)
        except Exception as err:  # any compiler failure: see guard_compile
            if not guard_compile:
                raise
            warnings.warn(
                f"torch.compile failed on this machine ({type(err).__name__}: "
                f"{str(err).splitlines()[0][:200] if str(err) else ''}); backend='auto' "
                "continues on the eager reference path",
                RuntimeWarning,
                stacklevel=3,
            )
            name, step_fn = "reference", make_step_fn("reference", module, cfg, device)
            xr, loss = reverse_impute(module, x_all, m_all, keys, cfg, lo, hi, step_fn=step_fn)
        guard_compile = False
        diverged = ~(torch.isfinite(xr).all(dim=1) & torch.isfinite(loss))
        if diverged.any():
            # No silent garbage: a row whose loop blew up keeps its (finite) start.
            xr = torch.where(diverged[:, None], x_all, xr)
        xc = None
        if outs_clean is not None:
            xc = clean_pass(module, xr, m_all, cfg, keys, int(cfg.clean_samples))
            xc = _clamped(xc, m_all, lo, hi)
            bad = ~torch.isfinite(xc).all(dim=1)
            if bad.any():  # the clean pass falls back to the loop's result for that row
                xc = torch.where(torch.isfinite(xc), xc, xr)
        for i in range(k):
            part = slice(i * width, i * width + size)
            outs[i][start:stop] = xr[part].cpu()
            losses[i][start:stop] = loss[part].cpu()
            n_fallback[i] += int(diverged[part].sum())
            if xc is not None:
                outs_clean[i][start:stop] = xc[part].cpu()
                n_clean_fallback[i] += int(bad[part].sum())
    for r, fell, fell_clean in zip(restarts, n_fallback, n_clean_fallback, strict=True):
        which = f" (restart {r})" if k > 1 else ""
        if fell:
            warnings.warn(
                f"reverse training diverged (non-finite loss or values) for {fell} of {n} "
                f"rows{which}; those rows keep their '{init}' starting values. Lower "
                "reverse_lr or check the input scale.",
                RuntimeWarning,
                stacklevel=3,
            )
        if fell_clean:
            warnings.warn(
                f"the clean pass's output was not finite for {fell_clean} of {n} rows{which}; "
                "those rows keep the reverse loop's values",
                RuntimeWarning,
                stacklevel=3,
            )
    return [
        ReverseOutput(
            outs[i], outs_clean[i] if outs_clean is not None else None, losses[i], name, fell
        )
        for i, fell in enumerate(n_fallback)
    ]
