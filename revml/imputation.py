"""``transform``'s numeric core: a validated tensor and a :class:`FittedState` in, the
imputed container out.

:func:`impute` scales the rows, runs the direct pass or ``runs`` restarts of the reverse
loop (:func:`revml.reverse.impute_restarts`), combines the restarts and writes the values
into a copy of the caller's container. The estimator only routes containers here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from . import params as param_table
from . import precision
from .containers import array_spread, write_missing
from .reference import ReverseConfig
from .reverse import auto_batch_size, impute_direct, impute_restarts
from .state import FittedState
from .threads import gemm_size, layer_widths, threads_for, torch_threads


@dataclass
class ImputationDetails:
    """What :meth:`ReverseImputer.transform_details` returns.

    The last three fields are filled when restarts ran (``n_restarts >= 2``, reverse
    strategy) and are ``None`` otherwise.
    """

    X: Any  #: imputed data, same container type as the input
    X_before_clean: Any | None  #: reverse strategy: imputed values before the clean pass
    #: reverse strategy: final per-row reverse loss (scaled units); with restarts, the
    #: chosen restart's (``combine="lowest_loss"``) or the mean over restarts (``"mean"``)
    loss: np.ndarray | None
    backend: str | None  #: the execution path that ran
    #: per-value spread over the restarts, as :meth:`ReverseImputer.transform` with
    #: ``return_std=True`` returns it
    std: Any | None = None
    #: each restart's completed data, as :meth:`ReverseImputer.multiple_imputations`
    imputations: list | None = None
    #: (n_restarts, n_samples) final reverse loss of every restart (scaled units)
    restart_loss: np.ndarray | None = None

    def mapped(self, fn: Callable[[Any], Any]) -> ImputationDetails:
        """These details with ``fn`` applied to every container (data, spread, restarts)."""
        return ImputationDetails(
            fn(self.X),
            fn(self.X_before_clean),
            self.loss,
            self.backend,
            std=fn(self.std),
            imputations=None if self.imputations is None else [fn(a) for a in self.imputations],
            restart_loss=self.restart_loss,
        )


def hides(state: FittedState, params: Mapping[str, Any]) -> bool:
    """Whether input dropout hides entries (masked training) or rescales the rest."""
    if params["dropout_mode"] == "auto":
        return state.masked
    return params["dropout_mode"] == "hide"


def prior_weight_in_use(state: FittedState, params: Mapping[str, Any]) -> float:
    """The fitted prior weight, or the parameter if it was set (to a number) since."""
    if params["prior_weight"] == "auto":
        return state.prior_weight
    weight = float(params["prior_weight"])
    if weight > 0 and state.prior is None:
        raise ValueError(
            f"prior_weight={weight} but this imputer was fitted without a prior "
            f"(prior_weight_={state.prior_weight}); fit it again with prior_weight={weight}"
        )
    return weight


_CONFIG_TYPES = {f.name: type(f.default) for f in fields(ReverseConfig)}


def reverse_config(state: FittedState, params: Mapping[str, Any], seed: int) -> ReverseConfig:
    """The :class:`~revml.reference.ReverseConfig` of ``params`` on a fitted state: the
    parameter table's loop fields plus what fit learnt (radius, prior). The network alone
    decides ``precision="auto"`` (its largest product over
    :data:`revml.precision.DECIDING_ROWS` rows), never the rows a call imputes or the batch
    size, so that chunking cannot change a result."""
    loop = {k: _CONFIG_TYPES[k](v) for k, v in param_table.config_fields(params).items()}
    module = state.autoencoder
    work = 0 if module is None else gemm_size(precision.DECIDING_ROWS, layer_widths(module))
    return ReverseConfig(
        **loop,
        precision=precision.resolve(
            params["precision"], state.device, work, stage="loop", backend=params["backend"]
        ),
        dropout_rescale=not hides(state, params),
        radius=float(state.radius),
        seed=int(seed),
        prior_weight=prior_weight_in_use(state, params),
        prior=state.prior_on_device(),
    )


def combined(
    values: list[torch.Tensor], losses: torch.Tensor, how: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The restarts' values (each (N, D)) and losses (K, N) combined by ``how``."""
    if len(values) == 1:
        return values[0], losses[0]
    if how == "mean":
        return torch.stack(values).double().mean(0), losses.mean(0)
    # A diverged restart's loss may be NaN: it is never the lowest.
    best = torch.nan_to_num(losses, nan=torch.inf).argmin(0)
    rows = torch.arange(losses.shape[1])
    return torch.stack(values)[best, rows], losses[best, rows]


def impute(
    state: FittedState,
    params: Mapping[str, Any],
    X: Any,
    x: torch.Tensor,
    *,
    seed: int,
    row_offset: int = 0,
    runs: int = 1,
    keep: bool = False,
    std: bool = False,
) -> ImputationDetails:
    """Impute the validated tensor ``x``; results go into copies of the container ``X``.

    ``runs`` restarts of the reverse loop are combined by ``combine``; ``keep`` returns
    each one's completed data too, and ``std`` their spread (array containers only:
    tables take theirs from the decoded restarts).
    """
    if x.shape[1] != state.n_features:
        raise ValueError(
            f"X has {x.shape[1]} features, but ReverseImputer is expecting "
            f"{state.n_features} features as input"
        )
    scaler = state.scaler
    means = torch.from_numpy(scaler.means)

    def restore(values_scaled: torch.Tensor) -> Any:
        return write_missing(
            X,
            scaler.unscale(values_scaled),
            miss,
            lambda: scaler.unscale(means),
            params["missing_values"],
        )

    miss = torch.isnan(x)
    if not miss.any():
        details = ImputationDetails(write_missing(X, x, miss, None), None, None, None)
        if keep:
            details.imputations = [write_missing(X, x, miss, None) for _ in range(runs)]
            if std:
                details.std = array_spread(details.imputations, miss)
        return details
    xs = scaler.scale(x)
    module = state.autoencoder
    if module is None:  # one feature: nothing to impute from but its mean
        return ImputationDetails(restore(torch.where(miss, means.float(), xs)), None, None, "mean")
    device = state.device
    # The restarts share batches (revml.reverse.impute_restarts): rows x restarts a call.
    stacked = x.shape[0] * (runs if params["strategy"] != "direct" else 1)
    batch = int(params["batch_size"] or auto_batch_size(module, x.shape[1], device, stacked))
    fill = state.fill(params["fill"])
    work = gemm_size(min(batch, stacked), layer_widths(module))
    job = _Job(xs, miss, fill, batch, seed, int(row_offset), runs, keep, std, restore)
    with torch_threads(threads_for(work, params["threads"]), device):
        return _run(state, params, job)


@dataclass(frozen=True)
class _Job:
    """One :func:`impute` call past validation and scaling."""

    xs: torch.Tensor  # scaled rows (N, D), NaN at missing entries
    miss: torch.Tensor
    fill: torch.Tensor  # what missing entries hold for a direct pass
    batch: int
    seed: int
    row_offset: int
    runs: int
    keep: bool
    std: bool
    restore: Callable[[torch.Tensor], Any]  # scaled values -> the caller's container


def _blended(
    state: FittedState, values: torch.Tensor, miss: torch.Tensor, clamp: bool
) -> torch.Tensor:
    """The loop's imputation with the fitted blend applied (:mod:`revml.trees`); with
    ``clamp`` its moved entries stay in the training range (the Gaussian step's
    conditional mean can leave it, the trees' averages cannot)."""
    out = state.blend.apply(values.double().numpy(), miss.numpy())
    if clamp:
        lo, hi = state.scaler.clip_lo, state.scaler.clip_hi
        out = np.where(miss.numpy(), np.clip(out, lo, hi), out)
    return torch.from_numpy(out).to(values.dtype)


def _run(state: FittedState, params: Mapping[str, Any], job: _Job) -> ImputationDetails:
    """The direct pass or the restarts of the reverse loop, combined."""
    module, device, scaler = state.autoencoder, state.device, state.scaler
    xs, miss, fill, batch, runs, restore = (
        job.xs,
        job.miss,
        job.fill,
        job.batch,
        job.runs,
        job.restore,
    )
    means = torch.from_numpy(scaler.means)
    if params["strategy"] == "direct":
        xs_imp = impute_direct(
            module,
            xs,
            miss,
            fill,
            batch_size=batch,
            device=device,
            verbose=bool(params["verbose"]),
        )
        return ImputationDetails(restore(xs_imp), None, None, None)
    if runs >= 2 and float(params["restart_noise"]) == 0 and float(params["dropout"]) == 0:
        warnings.warn(
            f"{runs} restarts with restart_noise=0 and dropout=0 all run the same "
            "deterministic loop: they are identical and their spread is 0. Set "
            "restart_noise > 0",
            UserWarning,
            stacklevel=5,
        )
    clamp = bool(params["clamp"])
    cfg = reverse_config(state, params, job.seed)
    outs = impute_restarts(
        module,
        xs,
        miss,
        cfg,
        restarts=range(runs),
        init=params["init"],
        means=means,
        medians=torch.from_numpy(scaler.medians),
        lo=torch.from_numpy(scaler.clip_lo) if clamp else None,
        hi=torch.from_numpy(scaler.clip_hi) if clamp else None,
        backend=params["backend"],
        batch_size=batch,
        device=device,
        clean=bool(params["clean_pass"]),
        verbose=bool(params["verbose"]),
        row_offset=job.row_offset,
        direct_fill=fill,
    )
    final = [o.x_clean if o.x_clean is not None else o.x for o in outs]
    if state.blend is not None and params["blend"] != "none":
        final = [_blended(state, v, miss, clamp) for v in final]
    losses = torch.stack([o.loss for o in outs])
    xs_imp, loss = combined(final, losses, params["combine"])
    before = None
    if params["clean_pass"]:
        before = restore(combined([o.x for o in outs], losses, params["combine"])[0])
    details = ImputationDetails(restore(xs_imp), before, loss.numpy(), outs[0].backend)
    if runs >= 2:
        details.restart_loss = losses.numpy()
    if job.keep:
        details.imputations = [restore(v) for v in final]
        if job.std:
            details.std = array_spread(details.imputations, miss)
    return details
