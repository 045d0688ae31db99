"""``fit``'s last step on tables: choose how much of the trees' opinion each feature takes.

:func:`fit_blend` trains :mod:`revml.trees`' per-feature trees on the scaled training
rows, hides groups of observed numeric cells, imputes them with the fitted state's own
reverse loop, and picks each feature's weight from the trees' out-of-bag predictions of
the same cells (:func:`revml.trees.choose_weights`). Only cells of the training data are
used; a user's scored cells never are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .imputation import impute
from .state import FittedState
from .trees import TreeBlend, choose_weights, fit_trees

#: Groups of hidden cells, and the share of the observed numeric cells each hides: three
#: disjoint tenths score 30% of the cells while each run's damage stays near a table's own.
VALIDATION_GROUPS = 3
VALIDATION_SHARE = 0.1
#: The blend is for tables: at most this many (encoded) features.
MAX_FEATURES = 100


def blend_applies(state: FittedState, params: Mapping[str, Any]) -> bool:
    """Whether ``blend="auto"`` blends: a trained (not pre-trained) autoencoder on rows
    that are not images, with at most :data:`MAX_FEATURES` features."""
    if params["blend"] == "none" or state.autoencoder is None or state.pretrained:
        return False
    return params["image_shape"] is None and state.n_features <= MAX_FEATURES


def numeric_features(state: FittedState) -> np.ndarray:
    """Indices of the features a blend may move: all of an array's, a table's numeric,
    integer and boolean columns (not the one-hot features of categories)."""
    if state.encoder is None:
        return np.arange(state.n_features)
    out, start = [], 0
    for spec in state.encoder.specs_:
        if spec.kind != "categorical" and spec.width == 1:
            out.append(start)
        start += spec.width
    return np.asarray(out, dtype=int)


def fit_blend(
    state: FittedState, params: Mapping[str, Any], x: torch.Tensor, seed: int
) -> FittedState:
    """``state`` with a :class:`~revml.trees.TreeBlend` chosen on ``x`` (the training rows,
    NaN = missing, the units ``fit`` saw), or unchanged when no feature gains from it."""
    features = numeric_features(state)
    if len(features) == 0:
        return state
    xs = state.scaler.scale(x).numpy()
    jobs = -1 if params["threads"] == "auto" else int(params["threads"])  # the same trees
    models, oob = fit_trees(xs, features, seed, n_jobs=jobs)
    observed = ~np.isnan(xs)
    candidates = np.zeros_like(observed)
    candidates[:, features] = observed[:, features]
    rng = np.random.default_rng(seed)
    group = rng.integers(0, round(1 / VALIDATION_SHARE), size=xs.shape)
    hidden = np.zeros_like(observed)
    loop = np.full(xs.shape, np.nan)
    x_np = x.numpy()
    # The weights are a statistical choice: any available path computes the loop's maths
    # (within its tolerance), so an unavailable one asked for at transform fails there.
    quiet = {**params, "backend": "auto", "verbose": False}
    for g in range(VALIDATION_GROUPS):
        cells = candidates & (group == g)
        damaged = np.where(cells, np.nan, x_np)
        details = impute(
            state, quiet, damaged, torch.from_numpy(damaged), seed=seed,
            runs=int(params["n_restarts"]),
        )  # fmt: skip
        filled = state.scaler.scale(torch.as_tensor(np.asarray(details.X))).numpy()
        loop[cells] = filled[cells]
        hidden |= cells
    weights = choose_weights(xs, loop, oob, hidden)
    kept = {j: m for j, m in models.items() if weights[j] > 0}
    if not kept:
        return state
    blend = TreeBlend(weights, xs.astype(np.float32), seed, kept)
    return replace(state, blend=blend)
