"""``fit``'s last step on tables: choose how much of the Gaussian's and the trees' opinion
each feature takes.

:func:`validation_cells` picks a seeded tenth of the observed numeric cells, and of the
observed values of each categorical column, before training; the autoencoder and the
prior never learn from them. :func:`fit_blend` imputes them with the fitted loop, scores
the Gaussian step, the Gaussian copula step (:mod:`revml.copula`), the chained regressions'
step (:mod:`revml.chained`), the nearest rows' step (:mod:`revml.neighbours`) and each pass
of trial trees (trained without them) on them
(:func:`revml.trees.choose_weights`; a categorical column's one-hot features take one
weight a step, :func:`revml.trees.choose_group_weights`), then trains the kept trees on
every observed cell, and fits the prior again on every observed cell too (the weights
were chosen with the held-out one; on 42 validation cells the refit lowered the RMSE by
0.24%, geometric mean, 31 up and 11 down). Only cells of the training data are used; a
user's scored cells never are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .chained import fit_chained
from .copula import fit_copula
from .imputation import impute
from .neighbours import fit_neighbours
from .prior import fit_gaussian
from .state import FittedState
from .tabular import TabularEncoder
from .trees import (
    N_PASSES,
    Pass,
    TreeBlend,
    blended,
    choose_group_weights,
    choose_weights,
    fit_trees,
    gaussian_step,
)

#: Share of the observed numeric cells ``fit`` hides from the autoencoder to choose the
#: weights on: the loop's imputation of cells its network never saw is honest. A fifth
#: and a twentieth both cost RMSE on the validation masks of 14 tables (x1.0035, x1.0054;
#: ``compare_revisions_validation_share_20.json`` / ``_05.json``).
VALIDATION_SHARE = 0.1
#: The blend is for tables: at most this many (encoded) features.
MAX_FEATURES = 100
#: A pass of trees is kept only if it lowers the RMSE on the held cells by this share; the
#: first pass below it ends the blend (its kept trees, and later passes, are not trained).
#: On the validation masks of 7 tables it cost 0.09% RMSE (geometric mean; worst +0.9%)
#: and saved a quarter to a third of the fit where it dropped passes (bdims, diabetes).
MIN_PASS_GAIN = 0.005
#: A pass after the second is tried only where the pass before it lowered the held cells'
#: error (numeric RMSE, or the categories' Brier error) by at least this share: the gains
#: shrink from pass to pass, and a third pass pays where the second gained a lot (boston:
#: held error 7-9% lower in the second pass, 3-5% in the third) and costs its trial trees
#: for nothing where the second gained little (breast cancer: 0.6%, then 0.2%). Chosen on
#: the validation masks (seed 100) of 14 tables, MCAR, MNAR and MAR at 20%. The same bar
#: decides a fourth and fifth pass (:data:`revml.trees.N_PASSES`) from the third's and
#: fourth's gains.
LATE_PASS_GAIN = 0.02
#: A pass's gain (the two bars above) is scored out of sample when this is 2 or more: the
#: rows with held cells fall into this many seeded folds, and each fold's cells move with
#: the weights chosen on the other folds' cells. With 1 the weights are scored on the
#: cells they were fitted to, which flatters every pass a little; yet out of sample cost
#: RMSE on the validation masks of 14 tables (2 folds x1.0058, 3 folds x1.0038, 3 folds
#: with no bar x1.0018) for a quarter to a third less blend time: it drops passes that pay.
GAIN_FOLDS = 1
#: The Gaussian step is taken only if it lowers the held cells' error (either kind's) by at
#: least this share; minus infinity (the default): always. A 0.5% bar moved the RMSE on the
#: validation masks of 14 tables by x0.9998 (boston and auto -2% to +2% a cell, the small
#: tables, whose step gains more than that on their held cells, not at all); a 0 bar never
#: dropped the step.
MIN_GAUSSIAN_GAIN = -np.inf
#: Whether a Gaussian copula step (:mod:`revml.copula`) follows the Gaussian step: its
#: weights are chosen like the Gaussian step's, on the held cells, after it. On the
#: validation masks of 14 tables (seed 100, MCAR and MNAR at 20%, training seeds 0 and 1)
#: it lowered the RMSE by x0.9922 (breast cancer -11% / -8%, hitters -3%; airquality's
#: MCAR cell +3.9%, credit +2%); taken only where it lowered the held cells' RMSE by
#: 0.5%, x0.9929 (``compare_revisions_copula.json``, ``_copula_bar.json``); on mask seed
#: 101 x0.9946 (``_copula_seed101.json``); before the Gaussian step instead, x1.0012
#: against after it (``_copula_first.json``).
COPULA = True
#: Whether a chained-regressions step (:mod:`revml.chained`: the algorithm of scikit-learn's
#: ``IterativeImputer`` with ``BayesianRidge``) follows the copula step, its weights chosen like the
#: others' on the held cells, taken only where it lowers the held cells' error by
#: :data:`MIN_CHAINED_GAIN`. On the validation masks of 14 tables (seed 100, MCAR and MNAR at 20%,
#: training seeds 0 and 1; ``compare_revisions_chained*.json``) it lowered the RMSE by x0.9981 with
#: that bar (credit -1.0% / -2.7%, survey -1.3% / -3.3%; boston +0.8% / +1.4%, auto MCAR +1.3%), and
#: by x0.9987 without one (worst auto MCAR +2.2%); on mask seed 101, x0.9988 with the bar (worst
#: breast cancer MNAR +0.5%). Through scikit-learn's ``IterativeImputer`` the step cost 14% of fit +
#: transform; :mod:`revml.chained`'s own NumPy round robin gives the same RMSE on all 56 fits, 1.13x
#: faster (``compare_revisions_chained_numpy.json``).
CHAINED = True
MIN_CHAINED_GAIN = 0.01
#: Whether a nearest-rows step (:mod:`revml.neighbours`: the mean of a feature over the five
#: training rows most alike, scikit-learn's ``KNNImputer``'s rule) follows the chained step,
#: its weights chosen like the others' on the held cells, taken only where it lowers the held
#: cells' error by :data:`MIN_NEIGHBOUR_GAIN`. On the validation masks of 14 tables (MCAR and
#: MNAR at 20%, training seeds 0 and 1) it lowered the RMSE by x0.9991 on mask seed 100 and
#: x0.9989 on 101 as a prototype through ``KNNImputer`` (``compare_revisions_neighbours.json``,
#: ``_neighbours_seed101.json``; auto MNAR -2.6%, penguins MCAR -1.9%, airquality -1% to -2.3%;
#: boston MNAR +1.4% on seed 100, hitters +1.2% on 101), and by x0.9991 on seed 100 as
#: :mod:`revml.neighbours` computes it (``_neighbours_own.json``; worst breast cancer MNAR
#: +0.9%), for 2-3% of fit + transform.
NEIGHBOURS = True
MIN_NEIGHBOUR_GAIN = 0.01


def blend_wanted(params: Mapping[str, Any], n_features: int) -> bool:
    """Whether ``blend="auto"`` blends: an autoencoder ``fit`` trains (not a pre-trained
    one) on rows that are not images, with 2 to :data:`MAX_FEATURES` (encoded) features."""
    if params["blend"] == "none" or params["autoencoder"] is not None:
        return False
    return params["image_shape"] is None and 2 <= n_features <= MAX_FEATURES


def numeric_features(encoder: TabularEncoder | None, n_features: int) -> np.ndarray:
    """Indices of the features the trees may move: all of an array's, a table's numeric,
    integer and boolean columns (not the one-hot features of categories)."""
    if encoder is None:
        return np.arange(n_features)
    out, start = [], 0
    for spec in encoder.specs_:
        if spec.kind != "categorical" and spec.width == 1:
            out.append(start)
        start += spec.width
    return np.asarray(out, dtype=int)


def categorical_groups(encoder: TabularEncoder | None) -> list[slice]:
    """The one-hot features of each categorical column of a table (none for an array):
    the Gaussian step and the trees move such a group as a whole, with one weight."""
    if encoder is None:
        return []
    return [cols for spec, cols in encoder.blocks() if spec.kind == "categorical"]


def validation_cells(
    x: torch.Tensor, features: np.ndarray, seed: int, groups: Sequence[slice] = ()
) -> torch.Tensor:
    """(N, D) bool: a seeded :data:`VALIDATION_SHARE` of the observed cells of
    ``features`` and of the observed values of each categorical column (``groups``: its
    one-hot features, held all together), in rows that observe at least two values (a row
    keeps one at least)."""
    observed = ~torch.isnan(x).numpy()
    candidates = np.zeros_like(observed)
    candidates[:, features] = observed[:, features]
    candidates &= observed.sum(1, keepdims=True) >= 2
    draw = np.random.default_rng([seed, 0xB1E0]).random(x.shape) < VALIDATION_SHARE
    held = candidates & draw
    seen = observed.sum(1) - sum(observed[:, g].sum(1) - observed[:, g.start] for g in groups)
    for g in groups:  # the draw at a group's first feature; a column observed as a whole
        held[:, g] = (draw[:, g.start] & observed[:, g].all(1) & (seen >= 2))[:, None]
    values = held.sum(1) - sum(held[:, g].sum(1) - held[:, g.start] for g in groups)
    for row in np.flatnonzero(values == seen):  # give such a row back its first value
        first = int(np.argmax(held[row]))
        group = next((g for g in groups if g.start <= first < g.stop), slice(first, first + 1))
        held[row, group] = False
    return torch.from_numpy(held)


def fit_blend(
    state: FittedState,
    params: Mapping[str, Any],
    x: torch.Tensor,
    held: torch.Tensor,
    seed: int,
) -> FittedState:
    """``state`` with a :class:`~revml.trees.TreeBlend` chosen on ``x`` (the training rows,
    NaN = missing, the units ``fit`` saw), or unchanged when no feature gains from it.

    ``state``'s autoencoder was trained with the ``held`` cells hidden
    (:func:`validation_cells`), and the weights are chosen in that world: the loop
    imputes ``x`` without the held cells, each pass trains trees that never see a held
    value, predicts the held cells, picks the weights on them and moves the table on.
    The kept trees are then trained the same way on all of ``x`` as the loop imputes it,
    pass by pass with the chosen weights: the choice scores the procedure, the trees that
    run it at transform learn from every observed cell.
    """
    features = numeric_features(state.encoder, state.n_features)
    groups = categorical_groups(state.encoder)
    held_all = held.numpy()
    held_np = np.zeros_like(held_all)  # the numeric held cells: the trees' and their score
    held_np[:, features] = held_all[:, features]
    if not held_all.any():
        return state
    xs = state.scaler.scale(x).numpy().astype(np.float64)
    jobs = -1 if params["threads"] == "auto" else int(params["threads"])  # the same trees
    missing = np.isnan(xs)
    blind = np.where(held_all, np.nan, xs)  # what the held-out world observes
    x_np = x.numpy()
    table = _loop(state, params, np.where(held_all, np.nan, x_np), seed)
    final = state
    if state.prior is not None:
        # The world the kept trees learn in and transform runs in reads every observed
        # cell: its prior too (the held-out world's, fitted without the held cells, chose
        # the weights).
        prior = fit_gaussian(torch.from_numpy(xs), torch.from_numpy(~missing), seed=seed)
        final = replace(state, prior=prior)
    # Stored as float32 (TreeBlend.filled): a loaded blend must start from these values.
    filled = _loop(final, params, x_np, seed).astype(np.float32).astype(np.float64)
    world = missing | held_all  # what the held-out world imputes
    held_cat = held_all & ~held_np  # the held categorical values' one-hot entries
    numeric = len(features) > 0 and held_np.any()
    categorical = len(groups) > 0 and held_cat.any()
    gaussian = np.zeros(xs.shape[1])
    if state.prior is not None:
        # The prior was fitted with the held cells hidden too (fit_state's ``hidden``).
        normal = gaussian_step(table, world, np.ones(xs.shape[1]), state.prior)
        gaussian = choose_weights(xs, table, normal, held_np)
        gaussian += choose_group_weights(xs, table, normal, held_all, groups)
        stepped = gaussian * normal + (1 - gaussian) * table
        if MIN_GAUSSIAN_GAIN > -np.inf and (
            _held_gain(stepped, table, xs, held_np, held_cat) < MIN_GAUSSIAN_GAIN
        ):
            gaussian = np.zeros(xs.shape[1])
        else:
            table = stepped
    copula_weights, copula = None, None
    if COPULA and numeric:
        # The held-out world's copula, without the held cells, chooses the weights.
        normal = fit_copula(blind, features, seed).conditional_mean(table, world)
        copula_weights = choose_weights(xs, table, normal, held_np)
        if copula_weights.any():
            table = copula_weights * normal + (1 - copula_weights) * table
            copula = fit_copula(xs, features, seed)
        else:
            copula_weights = None
    chained_weights, chained = None, None
    if CHAINED and numeric:
        chained_weights, chained, table = _barred_step(
            fit_chained, blind, xs, xs, table, world, held_np, held_cat, MIN_CHAINED_GAIN
        )
    neighbour_weights, neighbours = None, None
    if NEIGHBOURS and numeric:
        # Its final donors are the rows a loaded blend reads again (TreeBlend.data,
        # float32): the same bits.
        neighbour_weights, neighbours, table = _barred_step(
            lambda rows: fit_neighbours(rows, seed),
            blind,
            xs.astype(np.float32),
            xs,
            table,
            world,
            held_np,
            held_cat,
            MIN_NEIGHBOUR_GAIN,
        )
    blend = TreeBlend(
        gaussian,
        [],
        xs.astype(np.float32),
        filled.astype(np.float32),
        seed,
        final.prior,
        copula_weights,
        copula,
        chained_weights,
        chained,
        neighbour_weights,
        neighbours,
    )
    current = blend.steps(filled, missing)
    gain = 1.0  # the last kept pass's: the first two passes are always tried
    folds = np.random.default_rng([seed, 0xF01D]).integers(max(GAIN_FOLDS, 1), size=len(xs))
    for p in range(N_PASSES if numeric or categorical else 0):
        if p >= 2 and gain < LATE_PASS_GAIN:
            break
        trial = Pass(
            np.ones(xs.shape[1]), *fit_trees(table, blind, features, seed, p, jobs, groups)
        )
        trees = trial.apply(table, world)  # the trees' own values, else table's
        weights = choose_weights(xs, table, trees, held_np)
        weights += choose_group_weights(xs, table, trees, held_all, groups)
        moved = weights * trees + (1 - weights) * table
        if not (weights > 0).any():
            break
        scored = _cross_fitted(xs, table, trees, held_all, held_np, groups, folds, moved)
        gain = _held_gain(scored, table, xs, held_np, held_cat)  # either kind's, enough
        if gain < MIN_PASS_GAIN:
            break
        table = moved
        kept_features, kept_groups = blended(weights, groups)
        step = Pass(weights, *fit_trees(current, xs, kept_features, seed, p, jobs, kept_groups))
        current = step.apply(current, missing)
        blend.passes.append(step)
    if (
        not blend.passes
        and not gaussian.any()
        and all(step is None for step in (copula, chained, neighbours))
    ):
        return final
    return replace(final, blend=blend)


def _barred_step(
    fit,
    blind: np.ndarray,
    rows: np.ndarray,
    truth: np.ndarray,
    table: np.ndarray,
    world: np.ndarray,
    held_numeric: np.ndarray,
    held_categorical: np.ndarray,
    bar: float,
):
    """``(weights, model, table)`` of a step towards ``fit(...)``'s conditional mean: the
    held-out world's model (``fit(blind)``, without the held cells) imputes ``table``'s
    ``world`` entries and the weights are chosen on the held cells; where they lower the
    held cells' error by ``bar`` the table moves and the kept model is ``fit(rows)``
    (every observed cell), else ``(None, None, table)``."""
    normal = fit(blind).conditional_mean(table, world)
    weights = choose_weights(truth, table, normal, held_numeric)
    stepped = weights * normal + (1 - weights) * table
    if _held_gain(stepped, table, truth, held_numeric, held_categorical) < bar:
        return None, None, table
    return weights, fit(rows), stepped


def _cross_fitted(
    truth: np.ndarray,
    before: np.ndarray,
    other: np.ndarray,
    held: np.ndarray,
    held_numeric: np.ndarray,
    groups: Sequence[slice],
    folds: np.ndarray,
    moved: np.ndarray,
) -> np.ndarray:
    """``moved`` (``before`` moved towards ``other`` with the weights chosen on every held
    cell) with each fold's rows (``folds``: (N,) fold numbers) moved instead with the
    weights chosen on the other folds' held cells: ``moved`` itself for one fold."""
    n_folds = int(folds.max()) + 1
    if n_folds < 2:
        return moved
    out = moved.copy()
    for k in range(n_folds):
        rest = (folds != k)[:, None]
        weights = choose_weights(truth, before, other, held_numeric & rest)
        weights += choose_group_weights(truth, before, other, held & rest, groups)
        rows = folds == k
        out[rows] = weights * other[rows] + (1 - weights) * before[rows]
    return out


def _held_gain(
    moved: np.ndarray,
    before: np.ndarray,
    truth: np.ndarray,
    held_numeric: np.ndarray,
    held_categorical: np.ndarray,
) -> float:
    """The larger of the shares by which ``moved`` lowers the held numeric cells' RMSE and
    the held categories' Brier error (:func:`_gain`; 0 for a kind with no held entry)."""
    return max(
        _gain(moved, before, truth, held_numeric) if held_numeric.any() else 0.0,
        _gain(moved, before, truth, held_categorical) if held_categorical.any() else 0.0,
    )


def _gain(moved: np.ndarray, before: np.ndarray, truth: np.ndarray, held: np.ndarray) -> float:
    """The share by which ``moved`` lowers the error on the ``held`` entries (0 if none)."""
    old = _held_error(before, truth, held)
    return 1 - _held_error(moved, truth, held) / old if old > 0 else 0.0


def _held_error(values: np.ndarray, truth: np.ndarray, held: np.ndarray) -> float:
    """RMSE over the ``held`` entries (for one-hot entries, a Brier score's root); 0 if
    none."""
    if not held.any():
        return 0.0
    return float(np.sqrt(np.mean((values[held] - truth[held]) ** 2)))


def _loop(state: FittedState, params: Mapping[str, Any], x: np.ndarray, seed: int) -> np.ndarray:
    """The fitted loop's imputation of ``x`` (NaN = missing), scaled."""
    # The weights are a statistical choice: any available path computes the loop's maths
    # (within its tolerance), so an unavailable one asked for at transform fails there.
    quiet = {**params, "backend": "auto", "verbose": False}
    details = impute(
        state, quiet, x, torch.from_numpy(x), seed=seed, runs=int(params["n_restarts"])
    )
    return state.scaler.scale(torch.as_tensor(np.asarray(details.X))).numpy().astype(np.float64)
