"""A second opinion from trees: per-feature ExtraTrees on the loop's imputation, blended.

On tables with discrete structure (integer codes, a few repeated values, thresholds) tree
imputers beat the autoencoder: on the Boston housing table forest imputation's error is
22% lower than the reverse loop's. :class:`TreeBlend` holds, for every numeric feature
``j`` whose weight is above 0, an ``ExtraTreesRegressor`` that predicts ``j`` from the
other features *as the reverse loop filled them*, and the weight ``w_j`` of its
prediction in the imputed value: ``w_j * trees + (1 - w_j) * loop``. The trees learn from
the training rows where ``j`` is observed, the other features of those rows completed by
the loop, so they see at transform time what they saw in training: complete rows. A
categorical column gets an ``ExtraTreesClassifier`` of its category from the features
outside its one-hot block (:class:`CategoryTrees`); its class probabilities are blended
into the one-hot features with one weight for the column, and the category decodes from
the result.

Before the trees, a Gaussian step (:func:`gaussian_step`) moves the missing entries
towards the fitted prior's conditional mean with a weight per feature. A blend then takes
up to :data:`N_PASSES` *passes* of trees: pass ``p + 1``'s trees learn from, and predict
from, the table as pass ``p`` left it, MissForest's iteration started from the reverse loop
instead of from column means; a pass that lowers neither the held numeric cells' error
nor the held categories' (Brier) error by :data:`revml.blending.MIN_PASS_GAIN` is not kept
and ends the blend, and a pass after the second is tried only after one that gained
:data:`revml.blending.LATE_PASS_GAIN`. :func:`choose_weights` gives each step a
least-squares weight per feature, shrunk towards the one pooled over all features, chosen on
observed cells ``fit`` hid from every model (:mod:`revml.blending`; never cells a user
scores). Everything here works in the imputer's scaled units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .chained import ChainedRegression, fit_chained
from .copula import GaussianCopula, fit_copula
from .neighbours import Neighbours, fit_neighbours
from .prior import GaussianPrior

#: Trees per feature: 30 kept the validation gain of 50 on the suite's tables at 60% of
#: the cost (a 30-column table: 2.2 s against 5.2 s on the 2-core CPU). Swept again with
#: five passes (``sweep_blend_n_trees.json``, 14 tables' validation masks): 20 trees RMSE
#: x1.0038 for 25% less blend time, 50 trees x0.9998 for 41% more.
N_TREES = 30
#: Passes of trees at most: each starts from the one before's blended table; every pass
#: after the second is tried only after one that gained :data:`revml.blending.LATE_PASS_GAIN`
#: (five rather than three: boston -0.8% / -0.5% RMSE under MCAR / MNAR at 20% on the
#: validation masks, the other tables the same; ``compare_revisions_five_passes.json``).
N_PASSES = 5
#: Rows the trees of one feature train on at most (a seeded subset beyond it).
MAX_TREE_ROWS = 50_000
#: Row-trees a feature's forest grows at most: :data:`N_TREES` trees up to 5,000 rows,
#: fewer trees on more rows (:func:`forest_size`), each tree on every row. A tree's cost
#: grows with its rows, so the forest costs about the same from 5,000 rows on, and every row
#: speaks: on 26,115 rows (weather, a validation mask) 30 trees on a 5,000-row subset gave
#: RMSE 0.1589, 10 trees on every row 0.1458, 30 trees on every row 0.1430 in 2.5x the fit.
TREE_ROW_BUDGET = 150_000
#: Trees a forest keeps however many rows it learns from.
MIN_TREES = 10
#: Prior strength, in cells, of the pooled weight in each feature's weight: a feature with
#: 50 validation cells gets half its own estimate, half the pooled one.
SHRINK_CELLS = 50.0
#: Features train their forests side by side, one forest a thread, only where a feature
#: has at least this many cells (rows x inputs): below it Python's share of a forest's fit
#: holds the threads back. Every feature's 30 trees on the 2-core CPU, 20% of the targets
#: missing, median of 5, one thread against two (:func:`fit_forest`'s trees): 150 x 6,
#: 109 ms against 105; 300 x 7, 117 against 102; 392 x 8, 170 against 125; 263 x 17, 415
#: against 279. (With scikit-learn's forest fit, which clones an estimator a tree, 150 x 6
#: took 0.14 s in two threads against 0.09 s in one, and this was 5,000.)
PARALLEL_TREE_CELLS = 1000


@dataclass
class Pass:
    """One pass of trees: a weight per feature and the trees of the features above 0."""

    weights: np.ndarray  # (D,) float64 in [0, 1]
    models: dict = field(default_factory=dict, repr=False)  # feature -> regressor Forest
    #: (first, stop) of a categorical column's one-hot features -> :class:`CategoryTrees`
    classifiers: dict = field(default_factory=dict, repr=False)

    def apply(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """Every feature's trees predict from the same table (``values``); returns a copy
        with the missing entries (``miss``) of the blended features moved."""
        out = values.copy()
        for j, model in self.models.items():
            rows = miss[:, j]
            if rows.any():
                w = self.weights[j]
                pred = forest_predict(model, other_columns(values[rows], j))
                out[rows, j] = w * pred + (1 - w) * values[rows, j]
        for (first, stop), trees in self.classifiers.items():
            rows = miss[:, first]
            if rows.any():
                cols = slice(first, stop)
                w = self.weights[first]
                pred = trees.predict(other_block(values[rows], cols))
                out[rows, cols] = w * pred + (1 - w) * values[rows, cols]
        return out


@dataclass
class CategoryTrees:
    """An ExtraTrees classifier of one categorical column and the scaled values of its
    one-hot features (``off``: a 0, ``on``: a 1), so that its class probabilities come out
    in the units of the table: ``off + p * (on - off)`` per feature."""

    model: Any
    off: np.ndarray  # (k,)
    on: np.ndarray  # (k,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        proba = np.zeros((len(x), len(self.on)))
        proba[:, self.model.classes_] = forest_predict_proba(self.model, x)
        return self.off + proba * (self.on - self.off)


def gaussian_step(
    values: np.ndarray, miss: np.ndarray, weights: np.ndarray, prior: GaussianPrior
) -> np.ndarray:
    """``values`` with the ``miss`` entries moved by ``weights`` (D,) towards the normal
    model's conditional mean given each row's observed entries; returns a copy."""
    mean = prior.conditional_mean(torch.from_numpy(values), torch.from_numpy(miss)).numpy()
    return np.where(miss, weights * mean + (1 - weights) * values, values)


@dataclass
class TreeBlend:
    """The Gaussian step and passes of per-feature trees, with their weights.

    ``gaussian`` weighs the Gaussian prior's conditional mean (:mod:`revml.prior`) against
    the loop, first; each :class:`Pass` of trees then starts from the table the step
    before it left. ``data`` (scaled, NaN = missing) holds the targets the trees learn
    from and ``filled`` the reverse loop's imputation of the same rows; both are kept so
    a saved imputer rebuilds the same trees.
    """

    gaussian: np.ndarray  # (D,) float64 in [0, 1]; all 0 without a prior
    passes: list[Pass]
    data: np.ndarray  # (N, D) float32
    filled: np.ndarray  # (N, D) float32
    seed: int
    prior: GaussianPrior | None = field(default=None, repr=False)
    copula_weights: np.ndarray | None = None  # (D,) in [0, 1], or None: no copula step
    copula: GaussianCopula | None = field(default=None, repr=False)
    chained_weights: np.ndarray | None = None  # (D,) in [0, 1], or None: no chained step
    chained: ChainedRegression | None = field(default=None, repr=False)
    neighbour_weights: np.ndarray | None = None  # (D,) in [0, 1], or None: no such step
    neighbours: Neighbours | None = field(default=None, repr=False)

    @property
    def weights(self) -> np.ndarray:
        """(1 + passes, D): row 0 the Gaussian step's weights, then each pass's weight of
        the trees, per feature."""
        return np.stack([self.gaussian] + [p.weights for p in self.passes])

    @classmethod
    def rebuilt(
        cls,
        weights: np.ndarray,
        data: np.ndarray,
        filled: np.ndarray,
        seed: int,
        prior: GaussianPrior | None,
        groups: Sequence[slice] = (),
        copula_weights: np.ndarray | None = None,
        numeric: np.ndarray | None = None,
        chained_weights: np.ndarray | None = None,
        neighbour_weights: np.ndarray | None = None,
    ) -> TreeBlend:
        """The blend with its trees trained again (deterministic: the same trees);
        ``groups``: the one-hot features of each categorical column; ``copula_weights``
        the copula step's, whose copula is fitted again on ``data``'s ``numeric``
        features (deterministic too); ``chained_weights`` the chained step's, whose
        regressions are fitted again on ``data`` (deterministic too); ``neighbour_weights``
        the nearest rows' step's, whose training rows are ``data``'s again."""
        weights = np.asarray(weights, dtype=np.float64)
        data = np.asarray(data, np.float32)
        copula = None
        if copula_weights is not None:
            copula_weights = np.asarray(copula_weights, dtype=np.float64)
            if numeric is None:
                raise ValueError("a copula step needs the numeric features it maps")
            copula = fit_copula(data.astype(np.float64), numeric, seed)
        chained = None
        if chained_weights is not None:
            chained_weights = np.asarray(chained_weights, dtype=np.float64)
            chained = fit_chained(data.astype(np.float64))
        neighbours = None
        if neighbour_weights is not None:
            neighbour_weights = np.asarray(neighbour_weights, dtype=np.float64)
            neighbours = fit_neighbours(data, seed)
        blend = cls(
            weights[0],
            [],
            data,
            np.asarray(filled, np.float32),
            seed,
            prior,
            copula_weights,
            copula,
            chained_weights,
            chained,
            neighbour_weights,
            neighbours,
        )
        miss = np.isnan(data)
        current = blend.steps(np.asarray(filled, np.float64), miss)
        for p, w in enumerate(weights[1:]):
            features, kept = blended(w, groups)
            step = Pass(w, *fit_trees(current, data, features, seed, p, groups=kept))
            current = step.apply(current, miss)
            blend.passes.append(step)
        return blend

    def gaussian_step(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """:func:`gaussian_step` with this blend's weights (``values`` itself if none)."""
        if self.prior is None or not self.gaussian.any():
            return values
        return gaussian_step(values, miss, self.gaussian, self.prior)

    def copula_step(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """``values`` with the ``miss`` entries moved by :attr:`copula_weights` towards the
        copula's conditional mean (``values`` itself without a copula step)."""
        return _step_towards(self.copula, self.copula_weights, values, miss)

    def chained_step(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """``values`` with the ``miss`` entries moved by :attr:`chained_weights` towards
        the chained regressions' imputation (``values`` itself without a chained step)."""
        return _step_towards(self.chained, self.chained_weights, values, miss)

    def neighbour_step(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """``values`` with the ``miss`` entries moved by :attr:`neighbour_weights` towards
        the nearest training rows' mean (``values`` itself without that step)."""
        return _step_towards(self.neighbours, self.neighbour_weights, values, miss)

    def steps(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """The steps before the trees: Gaussian, copula, chained regressions, neighbours."""
        values = self.gaussian_step(values, miss)
        values = self.copula_step(values, miss)
        values = self.chained_step(values, miss)
        return self.neighbour_step(values, miss)

    def apply(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """``values`` (N, D, scaled, the loop's imputation) with each blended feature's
        missing entries (``miss``) moved towards the Gaussian conditional mean, the
        copula's, the chained regressions' and the nearest rows', then towards its trees'
        prediction, pass by pass."""
        values = self.steps(values, miss)
        for step in self.passes:
            values = step.apply(values, miss)
        return values


def _step_towards(model, weights: np.ndarray | None, values: np.ndarray, miss: np.ndarray):
    """``values`` with the ``miss`` entries moved by ``weights`` (D,) towards ``model``'s
    ``conditional_mean`` (``values`` itself without a model or a weight above 0)."""
    if model is None or weights is None or not weights.any():
        return values
    mean = model.conditional_mean(values, miss)
    return np.where(miss, weights * mean + (1 - weights) * values, values)


def blended(weights: np.ndarray, groups: Sequence[slice]) -> tuple[np.ndarray, list[slice]]:
    """The numeric features and the categorical columns (``groups``) that a pass's
    ``weights`` (D,) give a share above 0: those whose trees it trains."""
    in_groups = np.zeros(len(weights), dtype=bool)
    for g in groups:
        in_groups[g] = True
    features = np.flatnonzero((weights > 0) & ~in_groups)
    return features, [g for g in groups if weights[g.start] > 0]


def other_columns(x: np.ndarray, j: int) -> np.ndarray:
    return np.delete(x, j, axis=1)


def other_block(x: np.ndarray, cols: slice) -> np.ndarray:
    """``x`` without the features ``cols`` (a categorical column's one-hot block)."""
    return np.delete(x, np.arange(cols.start, cols.stop), axis=1)


@dataclass
class Forest:
    """A fitted ExtraTrees ensemble without the ensemble object: its trees in the order
    scikit-learn's ``ExtraTreesRegressor`` / ``ExtraTreesClassifier`` would hold them
    (``estimators_``) and, for a classifier, the labels its encoded classes stand for
    (``classes_``). :func:`fit_forest` builds it; :func:`forest_predict` and
    :func:`forest_predict_proba` read it (or a scikit-learn forest)."""

    estimators_: list
    classes_: np.ndarray | None = None


def forest_size(rows: int) -> int:
    """Trees of a forest that learns from ``rows`` rows: :data:`N_TREES` while their
    row-trees stay within :data:`TREE_ROW_BUDGET`, fewer beyond, :data:`MIN_TREES` at least.

    >>> forest_size(5000), forest_size(7425), forest_size(20000)
    (30, 20, 10)
    """
    return int(min(N_TREES, max(MIN_TREES, TREE_ROW_BUDGET // max(int(rows), 1))))


def fit_forest(
    x: np.ndarray,
    y: np.ndarray,
    random_state: int,
    classifier: bool = False,
    n_trees: int | None = None,
) -> Forest:
    """``ExtraTreesRegressor(n_trees, random_state=random_state).fit(x, y)`` (or
    ``ExtraTreesClassifier``'s with ``classifier``), tree for tree, without the ensemble:
    the forest's default parameters on each ``ExtraTreeRegressor`` / ``ExtraTreeClassifier``,
    each tree's seed drawn from ``RandomState(random_state)`` in turn as the forest draws
    them, the input converted once to the trees' float32 (a classifier's labels encoded as
    the forest encodes them), and each tree fitted with ``check_input=False``, as the
    forest fits it. The forest's own fit clones a template estimator for every tree; on a
    blend's small tables that is a fifth of the fit (30 trees of 392 x 8: 41 ms against 32
    ms on the 2-core CPU). ``n_trees`` defaults to :data:`N_TREES`; the first ``k`` trees of
    a forest are those of a forest of ``k`` trees with the same seed. Complete inputs only:
    the blend's tables have no NaN."""
    from sklearn import config_context
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
    from sklearn.tree import ExtraTreeClassifier, ExtraTreeRegressor

    forest, tree = (
        (ExtraTreesClassifier, ExtraTreeClassifier)
        if classifier
        else (ExtraTreesRegressor, ExtraTreeRegressor)
    )
    defaults = forest().get_params()  # the forest's values of the parameters it passes on
    params = {k: defaults[k] for k in tree().get_params() if k in defaults}
    x = np.ascontiguousarray(x, dtype=np.float32)
    classes = None
    if classifier:
        classes, y = np.unique(y, return_inverse=True)
    y = np.ascontiguousarray(np.reshape(y, (-1, 1)), dtype=np.float64)
    draw = np.random.RandomState(random_state)
    seeds = [draw.randint(np.iinfo(np.int32).max) for _ in range(n_trees or N_TREES)]
    trees = []
    # A tree makes RandomState(seed) of its int seed; a generator reseeded in place with
    # ``seed(s)`` is in the state RandomState(s) starts in, so the tree draws the same
    # numbers, without a generator built a tree (117 us against 2 us). The parameters are
    # the forest's own, valid: their check is skipped (50 us a tree). The setting is per
    # thread: each of fit_trees' threads sets its own.
    generator = np.random.RandomState(0)
    with config_context(skip_parameter_validation=True):
        for s in seeds:
            generator.seed(s)
            model = tree(**{**params, "random_state": generator}).fit(x, y, check_input=False)
            model.random_state = s  # the parameter it was grown with, not the generator
            trees.append(model)
    return Forest(trees, classes)


def forest_predict(model, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` of a fitted forest regressor, bit for bit, without joblib:
    its trees' predictions summed in their order in float64, then divided by their count,
    as scikit-learn's sequential path does. scikit-learn dispatches every tree as a
    joblib task; on a blend's small inputs that overhead is most of the time (a 569 x 30
    table: 198 forests of 30 trees, 0.98 s through ``predict``). Each tree's prediction is
    read from its ``tree_`` (the structure its ``predict`` reads, one output: column 0),
    which skips the estimator's fitted-state checks: 12 us a tree against 27 us on the
    2-core CPU."""
    x = np.ascontiguousarray(x, dtype=np.float32)  # the trees' own dtype
    out = np.zeros(len(x), dtype=np.float64)
    for tree in model.estimators_:
        out += tree.tree_.predict(x)[:, 0]
    out /= len(model.estimators_)
    return out


def forest_predict_proba(model, x: np.ndarray) -> np.ndarray:
    """``model.predict_proba(x)`` of a fitted forest classifier, bit for bit, without
    joblib (:func:`forest_predict`'s reasons): its trees' class probabilities summed in
    their order, divided by their count."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros((len(x), len(model.classes_)), dtype=np.float64)
    for tree in model.estimators_:
        out += tree.predict_proba(x, check_input=False)
    out /= len(model.estimators_)
    return out


def fit_trees(
    inputs: np.ndarray,
    targets: np.ndarray,
    features: np.ndarray,
    seed: int,
    step: int = 0,
    n_jobs: int | None = None,
    groups: Sequence[slice] = (),
) -> tuple[dict, dict]:
    """An ExtraTrees regressor per feature ``j`` in ``features`` (feature -> :class:`Forest`),
    predicting ``targets[:, j]`` (NaN = missing) from the other columns of ``inputs``
    (complete) on the rows where it is observed, and an ExtraTrees classifier per
    categorical column in ``groups`` (its one-hot features; ``(first, stop)`` ->
    :class:`CategoryTrees`), predicting the column's category from the features outside
    it. ``step`` (the pass) seeds them apart; ``n_jobs`` (joblib's count; None: one thread)
    changes the speed, never the trees: models fit in up to that many threads, each forest
    in one (a 569 x 30 table: 1.36 s against 1.73 s with each forest's trees spread over
    the threads instead)."""
    from joblib import effective_n_jobs

    jobs = []
    columns = [(slice(int(j), int(j) + 1), False) for j in features]
    for cols, category in columns + [(g, True) for g in groups]:
        rows = np.flatnonzero(~np.isnan(targets[:, cols.start]))
        if len(rows) < 10:
            continue
        j = int(cols.start)
        if len(rows) > MAX_TREE_ROWS:  # a draw of its own per feature: rebuilt alike
            rng = np.random.default_rng([seed, j])
            rows = np.sort(rng.choice(rows, MAX_TREE_ROWS, replace=False))
        state = int(np.random.SeedSequence([seed, step, j]).generate_state(1)[0] >> 1)
        jobs.append((cols, category, rows, state))

    def fit(job: tuple[slice, bool, np.ndarray, int]):
        cols, category, rows, state = job
        if not category:
            x = other_columns(inputs[rows], cols.start)
            return fit_forest(x, targets[rows, cols.start], state, n_trees=forest_size(len(rows)))
        block = targets[:, cols]
        seen = block[~np.isnan(block[:, 0])]
        labels = np.argmax(targets[rows, cols], axis=1)
        model = fit_forest(
            other_block(inputs[rows], cols),
            labels,
            state,
            classifier=True,
            n_trees=forest_size(len(rows)),
        )
        return CategoryTrees(model, seen.min(0), seen.max(0))

    width = inputs.shape[1]
    big = any(
        len(rows) * (width - (c.stop - c.start)) >= PARALLEL_TREE_CELLS for c, _, rows, _ in jobs
    )
    workers = min(len(jobs), effective_n_jobs(n_jobs)) if n_jobs is not None and big else 1
    if workers <= 1:
        fitted = [fit(job) for job in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        # Tree building releases the GIL; the forests and their order are the serial ones.
        with ThreadPoolExecutor(workers) as pool:
            fitted = list(pool.map(fit, jobs))
    models, classifiers = {}, {}
    for (cols, category, _, _), model in zip(jobs, fitted, strict=True):
        if category:
            classifiers[(cols.start, cols.stop)] = model
        else:
            models[cols.start] = model
    return models, classifiers


def choose_weights(
    truth: np.ndarray, loop: np.ndarray, trees: np.ndarray, hidden: np.ndarray
) -> np.ndarray:
    """Per-feature weights (D,) of ``trees`` against ``loop`` on the ``hidden`` cells.

    Each feature's weight minimises ``||w * trees + (1 - w) * loop - truth||^2`` over its
    hidden cells, clipped to [0, 1], then shrunk towards the weight pooled over every
    feature by :data:`SHRINK_CELLS`. Cells where either prediction is NaN do not count.
    """
    usable = hidden & np.isfinite(trees) & np.isfinite(loop) & np.isfinite(truth)
    d = np.where(usable, trees - loop, 0.0)
    e = np.where(usable, truth - loop, 0.0)
    pooled = _ls_weight(d[usable], e[usable])
    weights = np.zeros(truth.shape[1])
    for j in range(truth.shape[1]):
        cells = usable[:, j]
        n = int(cells.sum())
        if n == 0:
            continue
        own = _ls_weight(d[cells, j], e[cells, j])
        weights[j] = (n * own + SHRINK_CELLS * pooled) / (n + SHRINK_CELLS)
    return weights


def choose_group_weights(
    truth: np.ndarray,
    loop: np.ndarray,
    other: np.ndarray,
    hidden: np.ndarray,
    groups: list[slice],
) -> np.ndarray:
    """(D,) weights of ``other`` against ``loop`` for the one-hot features of categorical
    columns (``groups``; 0 elsewhere): :func:`choose_weights` with a group's features
    sharing one weight, its least-squares fit over the group's ``hidden`` rows (a
    column's values, each its whole one-hot vector; a Brier score), shrunk towards the
    weight pooled over every group by :data:`SHRINK_CELLS` values."""
    weights = np.zeros(truth.shape[1])
    if not groups:
        return weights
    fits = []
    for g in groups:
        rows = hidden[:, g.start] & np.isfinite(other[:, g]).all(1) & np.isfinite(loop[:, g]).all(1)
        d = (other[rows, g] - loop[rows, g]).ravel()
        fits.append((g, int(rows.sum()), d, (truth[rows, g] - loop[rows, g]).ravel()))
    pooled = _ls_weight(
        np.concatenate([d for _, _, d, _ in fits]), np.concatenate([e for *_, e in fits])
    )
    for g, n, d, e in fits:
        if n:
            weights[g] = (n * _ls_weight(d, e) + SHRINK_CELLS * pooled) / (n + SHRINK_CELLS)
    return weights


def _ls_weight(d: np.ndarray, e: np.ndarray) -> float:
    denom = float(d @ d)
    if denom <= 1e-12:
        return 0.0
    return float(np.clip(float(d @ e) / denom, 0.0, 1.0))
