"""Chained linear regressions: each feature regressed on the others, round robin.

The blend's Gaussian step imputes the conditional mean of one multivariate normal whose
covariance is estimated from every feature at once, without shrinkage. Chained equations
(scikit-learn's ``IterativeImputer`` with ``BayesianRidge``, MICE's deterministic form)
fit one regularised regression per feature instead, each with its own shrinkage, and
iterate them from the column means: on small tables with categories (survey, wage,
credit) they beat the normal model by 2-5% (the peer suite's scored masks), and they err
differently from it. :func:`fit_chained` fits them to the scaled features (NaN = missing)
and :meth:`ChainedRegression.conditional_mean` imputes the missing entries of new rows
with the regressions it fitted; both are deterministic for a seed, so a saved imputer
fits the same regressions again on load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401 - registers it
from sklearn.impute import IterativeImputer
from sklearn.linear_model import BayesianRidge

#: Rounds over the features and the early-stopping tolerance: ``IterativeImputer``'s
#: defaults, as the peer it mirrors runs them.
MAX_ITER = 10
TOL = 1e-3


@dataclass(frozen=True, eq=False)
class ChainedRegression:
    """The fitted round robin of regressions (``imputer``) over every feature."""

    imputer: IterativeImputer

    def conditional_mean(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """(N, D) float64: the regressions' imputation of the ``miss`` entries of ``values``
        (scaled), from the row's other entries; ``values`` elsewhere."""
        x = np.where(miss, np.nan, np.asarray(values, np.float64))
        if not miss.any():
            return x
        return np.where(miss, self.imputer.transform(x), x)


def fit_chained(data: np.ndarray, seed: int) -> ChainedRegression:
    """Chained ``BayesianRidge`` regressions fitted to ``data`` (N, D, scaled, NaN =
    missing); each imputation is clipped to its feature's observed range (a constant
    feature is left unbounded: its regression predicts the constant)."""
    data = np.asarray(data, np.float64)
    observed = ~np.isnan(data)
    lo = np.where(observed, data, np.inf).min(0)
    hi = np.where(observed, data, -np.inf).max(0)
    varies = hi > lo
    imputer = IterativeImputer(
        estimator=BayesianRidge(),
        max_iter=MAX_ITER,
        tol=TOL,
        random_state=seed,
        min_value=np.where(varies, lo, -np.inf),
        max_value=np.where(varies, hi, np.inf),
        keep_empty_features=True,
    )
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # Not reaching TOL in MAX_ITER rounds is the peer's default behaviour too.
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputer.fit(data)
    return ChainedRegression(imputer)
