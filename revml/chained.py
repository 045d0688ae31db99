"""Chained linear regressions: each feature regressed on the others, round robin.

The blend's Gaussian step imputes the conditional mean of one multivariate normal whose
covariance is estimated from every feature at once, without shrinkage. Chained equations
(MICE's deterministic form: scikit-learn's ``IterativeImputer`` with its default
``BayesianRidge``) fit one regularised regression per feature instead, each with its own
shrinkage chosen by evidence maximisation, and iterate them from the column means: on
small tables with categories (survey, credit) they beat the normal model by 2-5% (the peer
suite's scored masks), and they err differently from it.

:func:`fit_chained` runs that algorithm, ``IterativeImputer(BayesianRidge(), max_iter=10,
tol=1e-3)`` with each feature clipped to its observed range, as plain NumPy: the same
regressions (``tests/test_chained.py`` checks them against scikit-learn's to 1e-9) at a
fraction of the cost, since scikit-learn's validation of each of the hundreds of small
fits cost more than the fits (0.48 s of a breast-cancer fit, 569 x 30). It is
deterministic, so a saved imputer fits the same regressions again on load.
:meth:`ChainedRegression.conditional_mean` imputes the missing entries of new rows with
the fitted sequence, as ``IterativeImputer.transform`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

#: Rounds over the features and the early-stopping tolerance (relative to the largest
#: observed magnitude): ``IterativeImputer``'s defaults.
MAX_ITER = 10
TOL = 1e-3
#: ``BayesianRidge``'s defaults: evidence iterations, their tolerance on the coefficients,
#: and the gamma priors' shape and rate of the noise (alpha) and weight (lambda) precisions.
RIDGE_ITER = 300
RIDGE_TOL = 1e-3
PRIOR = 1e-6


@dataclass(frozen=True, eq=False)
class ChainedRegression:
    """The fitted round robin: ``means`` (D,) start every missing entry, then each
    ``(feature, coef, intercept)`` of ``sequence`` in order replaces that feature's missing
    entries by ``others @ coef + intercept`` (``others``: the row's other features as they
    stand), clipped to ``[lo, hi]``."""

    means: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    sequence: tuple[tuple[int, np.ndarray, float], ...]

    def conditional_mean(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """(N, D) float64: the regressions' imputation of the ``miss`` entries of ``values``
        (scaled), from the row's other entries; ``values`` elsewhere."""
        x = np.where(miss, self.means, np.asarray(values, np.float64))
        if not miss.any():
            return x
        return _run(x, miss, self.sequence, self.lo, self.hi, fit=None)[0]


def fit_chained(data: np.ndarray) -> ChainedRegression:
    """Chained ``BayesianRidge`` regressions fitted to ``data`` (N, D, scaled, NaN =
    missing). Each feature's imputations are clipped to its observed range (a constant
    feature is left unbounded: its regression predicts the constant); a feature with no
    observed value keeps 0 and is never regressed. Nothing is drawn at random: the same
    data give the same regressions."""
    data = np.asarray(data, np.float64)
    miss = np.isnan(data)
    observed = ~miss
    empty = miss.all(0)
    count = observed.sum(0)
    means = np.where(empty, 0.0, np.where(observed, data, 0.0).sum(0) / np.maximum(count, 1))
    lo = np.where(observed, data, np.inf).min(0)
    hi = np.where(observed, data, -np.inf).max(0)
    varies = hi > lo
    lo, hi = np.where(varies, lo, -np.inf), np.where(varies, hi, np.inf)
    if miss.all() or data.shape[1] < 2:
        return ChainedRegression(means, lo, hi, ())
    active = miss & ~empty  # an empty feature stays at 0, as if observed
    order = np.argsort(active.mean(0), kind="mergesort")  # fewest missing first
    x = np.where(miss, means, data)
    tol = TOL * np.abs(data[observed]).max()
    sequence: list[tuple[int, np.ndarray, float]] = []
    for _ in range(MAX_ITER):
        before = x.copy()
        x, fitted = _run(x, active, order, lo, hi, fit=True)
        sequence.extend(fitted)
        # IterativeImputer's stopping rule: the matrix infinity norm (largest row sum).
        if np.abs(x - before).sum(1).max() < tol:
            break
    return ChainedRegression(means, lo, hi, tuple(sequence))


def _run(x, miss, steps, lo, hi, fit):
    """One pass of ``steps`` over ``x`` (N, D, modified in place): with ``fit`` the steps
    are feature indices and each regression is fitted first on the rows observing its
    feature; otherwise they are fitted ``(feature, coef, intercept)`` triples. Returns
    ``x`` and the triples used."""
    d = x.shape[1]
    used = []
    for step in steps:
        j, coef, intercept = (int(step), None, None) if fit else step
        others = np.r_[0:j, j + 1 : d]
        rows = miss[:, j]
        if fit:
            coef, intercept = _bayesian_ridge(x[~rows][:, others], x[~rows, j])
        used.append((j, coef, intercept))
        if rows.any():
            # Each row summed on its own (a BLAS product's order of summation depends on
            # the number of rows; a chunked transform must give the same bits).
            pred = (x[rows][:, others] * coef).sum(1) + intercept
            x[rows, j] = np.clip(pred, lo[j], hi[j])
    return x, used


def _bayesian_ridge(a: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """``BayesianRidge().fit(a, y)``'s coefficients and intercept: centred data, the noise
    and weight precisions re-estimated by evidence maximisation from one SVD."""
    n, p = a.shape
    eps = np.finfo(np.float64).eps
    alpha, lam = 1.0 / (y.var() + eps), 1.0
    a_mean, y_mean = a.mean(0), y.mean()
    a, y = a - a_mean, y - y_mean
    aty = a.T @ y
    u, s, vh = linalg.svd(a, full_matrices=n < p)
    eig = s**2
    vh = vh[: len(s)]

    def solve(alpha: float, lam: float) -> tuple[np.ndarray, float]:
        if n > p:
            coef = np.linalg.multi_dot([vh.T, vh / (eig + lam / alpha)[:, None], aty])
        else:
            coef = np.linalg.multi_dot([a.T, u / (eig + lam / alpha)[None, :], u.T, y])
        return coef, float(np.sum((y - a @ coef) ** 2))

    previous = None
    for i in range(RIDGE_ITER):
        coef, sse = solve(alpha, lam)
        gamma = np.sum((alpha * eig) / (lam + alpha * eig))
        lam = (gamma + 2 * PRIOR) / (np.sum(coef**2) + 2 * PRIOR)
        alpha = (n - gamma + 2 * PRIOR) / (sse + 2 * PRIOR)
        if i != 0 and np.sum(np.abs(previous - coef)) < RIDGE_TOL:
            break
        previous = coef.copy()
    coef, _ = solve(alpha, lam)
    return coef, float(y_mean - a_mean @ coef)
