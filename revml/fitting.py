"""``fit``'s numeric core: scaled data in, :class:`~revml.state.FittedState` out.

:func:`fit_state` resolves the ``"auto"`` choices, fits the :class:`FeatureScaler`, builds
and trains the autoencoder (through the one training loop,
:func:`revml.training.train_autoencoder`, which a distributed fit reaches through its
``hook``), and fits the code radius and the Gaussian prior.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import nn

from . import precision
from .errors import DataError, InvalidParameterError
from .model import MLPAutoencoder, default_architecture
from .prior import fit_gaussian
from .reference import split_autoencoder
from .scaling import FeatureScaler, in_unit_interval
from .state import FittedState, TrainingRecord, resolve_device
from .tabular import TabularEncoder
from .threads import gemm_size, layer_widths, threads_for, torch_threads
from .training import (
    LARGE_ROWS,
    TrainConfig,
    TrainingHook,
    Validation,
    default_train_config,
    train_autoencoder,
)

#: ``prior_weight="auto"`` for tables (an autoencoder trained with masking, no
#: ``image_shape``), chosen on validation masks (``benchmarks/sweep_prior.py``).
PRIOR_WEIGHT_TABLES = 0.03
#: ... for at most this many features (validated on 10 to 30; EM's cost grows as D**3).
PRIOR_AUTO_MAX_FEATURES = 256
#: Training rows the code radius is measured on.
_RADIUS_ROWS = 10_000
#: Early stopping holds out this share of the rows (at least 32, at most 5,000) to score
#: the training masks on, for data of at least EARLY_STOP_MIN_ROWS rows; smaller data
#: trains the sized number of updates. Why 10,000: on tables of a few hundred rows the
#: held-out score (the direct pass on hidden entries) stops improving long before the
#: reverse loop stops gaining from training (benchmarks/sweep_training.py --suite,
#: validation masks: early stopping cost 3-5% RMSE on boston, auto and penguins and 2%
#: on diabetes, and training twice the chosen length still 1-2%); on MNIST (60,000 rows)
#: it ran its full length and the command's accuracy did not drop.
VALIDATION_SHARE = 0.1
EARLY_STOP_MIN_ROWS = LARGE_ROWS  # where a blended table's short budget ends too
#: Score the held-out rows every epoch, but at least this many updates apart.
EVAL_MIN_UPDATES = 100


def seeds(random_state: Any) -> tuple[int, int]:
    """The training seed and the transform seed drawn from ``random_state``."""
    rng = check_random_state(random_state)
    train = int(rng.randint(np.iinfo(np.int32).max))
    return train, int(rng.randint(np.iinfo(np.int32).max))


def scaling_mode(params: Mapping[str, Any], in_unit: bool, masked: bool) -> str:
    """``scaling`` with ``"auto"`` resolved: ``"center"`` for an autoencoder trained with
    masking on rows that are not images, else ``"minmax"`` unless the data already lie in
    [0, 1] (``"none"``)."""
    if params["scaling"] != "auto":
        return params["scaling"]
    if masked and params["image_shape"] is None:
        return "center"
    return "none" if in_unit else "minmax"


def resolved_prior_weight(params: Mapping[str, Any], masked: bool, d: int) -> float:
    """``prior_weight`` with ``"auto"`` resolved (see :class:`revml.ReverseImputer`)."""
    if params["prior_weight"] != "auto":
        return float(params["prior_weight"])
    tables = masked and params["image_shape"] is None
    return PRIOR_WEIGHT_TABLES if tables and d <= PRIOR_AUTO_MAX_FEATURES else 0.0


def image_shape(params: Mapping[str, Any], d: int) -> tuple[int, int] | None:
    """``image_shape`` checked against the number of features."""
    if params["image_shape"] is None:
        return None
    shape = tuple(int(v) for v in params["image_shape"])
    if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != d:
        raise InvalidParameterError(
            f"image_shape={params['image_shape']!r} must be (height, width) with height * "
            f"width equal to the number of features ({d})"
        )
    return shape


def early_stops(params: Mapping[str, Any], n: int, masked: bool) -> bool:
    """Whether the fit holds out rows and stops when they stop improving: masked training
    of a length not forced by ``epochs``, on at least :data:`EARLY_STOP_MIN_ROWS` rows."""
    wanted = bool(params["early_stopping"]) and params["epochs"] is None
    return wanted and masked and n >= EARLY_STOP_MIN_ROWS


def split_validation(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and held-out row indices (a seeded permutation)."""
    n_val = int(min(max(round(VALIDATION_SHARE * n), 32), 5000))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed ^ 0x0DD5))
    return order[n_val:].sort().values, order[:n_val].sort().values


def train_config(
    params: Mapping[str, Any],
    n: int,
    d: int,
    seed: int,
    masked: bool,
    early: bool = False,
    *,
    blended: bool = False,
    total_rows: int | None = None,
):
    """The :class:`~revml.training.TrainConfig` of ``params`` for ``n`` training rows (of
    ``total_rows`` before the held-out split); ``early``: score held-out rows every epoch
    (at least 100 updates apart) and stop early; ``blended``: the tree blend follows
    (:func:`~revml.training.default_train_config`)."""
    auto = default_train_config(n, seed=seed, masked=masked, blended=blended, total_rows=total_rows)
    batch = int(params["train_batch_size"] or auto.batch_size)
    eval_every = max(math.ceil(n / batch), EVAL_MIN_UPDATES) if early else 0
    return TrainConfig(
        epochs=int(params["epochs"]) if params["epochs"] is not None else auto.epochs,
        batch_size=batch,
        lr=float(params["learning_rate"]),
        mask_fraction=float(params["mask_fraction"]),
        masking=params["masking"],
        self_condition=float(params["self_condition"]) if masked else 0.0,
        image_shape=image_shape(params, d),
        seed=seed,
        eval_every=eval_every,
    )


def fit_state(
    x: torch.Tensor,
    params: Mapping[str, Any],
    encoder: TabularEncoder | None = None,
    hook: TrainingHook | None = None,
    hidden: torch.Tensor | None = None,
) -> FittedState:
    """Fit on a validated (N, D) tensor (NaN = missing) with the estimator's ``params``.

    ``hook`` reaches the training loop (a distributed fit's module wrapper and sharded
    sample order); everything else is computed the same way on every process. ``hidden``
    (N, D bool): observed cells the scaling counts but the autoencoder, the code radius
    and the prior never learn from (the blend's validation cells, :mod:`revml.blending`,
    which then fits the prior again on every cell).
    """
    n, d = x.shape
    observed = ~torch.isnan(x)
    if not observed.any():
        raise DataError("X has no observed value: every entry is missing")
    device = resolve_device(params["device"])
    train_seed, _ = seeds(params["random_state"])
    pretrained = params["autoencoder"] is not None
    masked = not pretrained and params["masking"] != "none"
    scaler, xs = FeatureScaler.fit(x, scaling_mode(params, in_unit_interval(x), masked))
    if hidden is not None:
        xs = xs.masked_fill(hidden, float("nan"))
        observed = ~torch.isnan(xs)
    means = torch.from_numpy(scaler.means)
    if d == 1 and not pretrained:
        warnings.warn(
            "ReverseImputer needs at least 2 features to impute one from the others; "
            "X has 1 feature, so its missing values are filled with the column mean",
            UserWarning,
            stacklevel=4,
        )
        return FittedState(scaler, None, False, 1.0, 0.0, None, encoder, TrainingRecord(), device)
    record = TrainingRecord()
    if pretrained:
        module = copy.deepcopy(params["autoencoder"]).to(device)
    else:
        module = _new_autoencoder(params, xs, observed, masked, train_seed, device)
        train_x, validation = xs, None
        early = early_stops(params, n, masked)
        if early:
            rows, held_out = split_validation(n, train_seed)
            train_x = xs[rows]
        # ``hidden`` is the blend's validation cells: a blended table (revml.blending).
        blended = hidden is not None
        cfg = train_config(
            params, len(train_x), d, train_seed, masked, early, blended=blended, total_rows=n
        )
        if early:
            validation = Validation.draw(xs[held_out].to(device), cfg)
        work = gemm_size(cfg.batch_size, layer_widths(module))
        cfg = replace(cfg, precision=precision.resolve(params["precision"], device, work))
        with torch_threads(threads_for(work, params["threads"]), device):
            history = train_autoencoder(
                module,
                train_x.to(device),
                means.to(device),
                cfg,
                verbose=bool(params["verbose"]),
                hook=hook,
                validation=validation,
            )
        record = TrainingRecord(
            history.loss,
            history.n_updates,
            history.validation,
            history.best_update,
            history.stop_reason,
        )
    module.eval().requires_grad_(False)
    _check_output_shape(module, means.to(device), d)
    # The autoencoder saw missing and hidden entries as 0 when trained with masking.
    fill = torch.zeros_like(means) if masked else means
    weight = resolved_prior_weight(params, masked, d)
    prior = fit_gaussian(xs, observed, seed=train_seed) if weight > 0 else None
    radius = code_radius(module, xs, observed, fill, device)
    return FittedState(
        scaler, module, masked, radius, weight, prior, encoder, record, device, pretrained
    )


def _new_autoencoder(params, xs, observed, masked, seed, device) -> nn.Module:
    d = xs.shape[1]
    hidden, bottleneck = default_architecture(d, masked=masked)
    scaled_unit = bool(xs[observed].min() >= 0 and xs[observed].max() <= 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = MLPAutoencoder(
            d,
            hidden=params["hidden"] if params["hidden"] is not None else hidden,
            bottleneck=params["bottleneck"] if params["bottleneck"] is not None else bottleneck,
            activation=params["activation"],
            output_activation="sigmoid" if scaled_unit else "identity",
        )
    return module.to(device)


def _check_output_shape(module: nn.Module, fill: torch.Tensor, d: int) -> None:
    with torch.no_grad():
        probe = module(fill[None].expand(2, d))
    if tuple(probe.shape) != (2, d):
        raise DataError(
            f"the autoencoder maps (B, {d}) to {tuple(probe.shape)}; it must return (B, {d})"
        )


def code_radius(module, xs, observed, fill, device) -> float:
    """The median code norm of (up to 10k) training rows: the sphere the codes live near
    (1 for a module without a bottleneck)."""
    encode, decode = split_autoencoder(module)
    if decode is None:
        return 1.0
    sample = torch.where(observed, xs, fill)[:_RADIUS_ROWS].to(device)
    with torch.no_grad():
        norms = encode(sample).flatten(1).norm(dim=1)
    return float(max(norms.median().item(), 1e-6))
