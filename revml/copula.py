"""A Gaussian copula: the normal model fitted to each feature's normal scores.

The blend's Gaussian step (:func:`revml.trees.gaussian_step`) imputes the conditional mean
of a multivariate normal fitted to the scaled features: right where the columns are close
to linear functions of each other, biased where a column is skewed or bounded. The copula
maps each numeric feature through its own empirical distribution to a standard normal
score (``z = Phi^-1(F(x))``), fits the normal there (:func:`revml.prior.fit_gaussian`, by
EM over the observed entries), and imputes the mean of ``F^-1(Phi(z))`` over the
conditional normal of the missing scores, integrated with Gauss-Hermite nodes: the mean in
the data's own units, not the median the back-transformed conditional mean would give.
Other features (the one-hot features of categories) enter the normal as they are.

Each feature's distribution is kept as at most :data:`GRID` quantiles of its observed
values; scores and values between them are interpolated, values outside the observed range
map to its ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .prior import GaussianPrior, _missing_blocks, fit_gaussian

#: Quantiles a feature's empirical distribution keeps at most (all its observed values
#: when fewer).
GRID = 1000
#: Gauss-Hermite nodes of the conditional mean's integral.
NODES = 16

_T, _W = np.polynomial.hermite_e.hermegauss(NODES)
_W = _W / _W.sum()


def _phi_inv(u: np.ndarray) -> np.ndarray:
    return np.sqrt(2.0) * _erfinv(2.0 * u - 1.0)


def _erfinv(y: np.ndarray) -> np.ndarray:
    return torch.special.erfinv(torch.from_numpy(np.asarray(y, dtype=np.float64))).numpy()


def _phi(z: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()


@dataclass(frozen=True, eq=False)
class GaussianCopula:
    """``grids[j]`` (sorted values) for each feature in ``features``, and the normal
    ``prior`` over every feature in score space (a non-``features`` feature as it is)."""

    features: np.ndarray  # (F,) int
    grids: tuple[np.ndarray, ...]  # F sorted float64 arrays
    prior: GaussianPrior

    def scores(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, D) with each of ``features`` as its normal score (NaN stays NaN)."""
        return _scores(x, self.features, self.grids)

    def conditional_mean(self, x: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """``x`` (N, D) with the ``miss`` entries of ``features`` set to their conditional
        mean under the copula given each row's observed entries; other entries unchanged."""
        z = self.scores(np.where(miss, 0.0, x))
        zt, mt = torch.from_numpy(np.where(miss, 0.0, z)), torch.from_numpy(miss)
        mean = self.prior.conditional_mean(zt, mt).numpy()
        sd = np.sqrt(np.maximum(conditional_variance(self.prior, mt).numpy(), 0.0))
        out = np.array(x, dtype=np.float64, copy=True)
        for j, grid in zip(self.features, self.grids, strict=True):
            rows = miss[:, j]
            if not rows.any():
                continue
            u = _phi(mean[rows, j][:, None] + sd[rows, j][:, None] * _T[None, :])
            out[rows, j] = (_quantile(grid, u) * _W).sum(axis=1)  # per row, in one order
        return out


def _scores(x: np.ndarray, features: np.ndarray, grids: tuple[np.ndarray, ...]) -> np.ndarray:
    """:meth:`GaussianCopula.scores` for the distributions ``grids`` of ``features``."""
    z = np.array(x, dtype=np.float64, copy=True)
    for j, grid in zip(features, grids, strict=True):
        col = z[:, j]
        ok = np.isfinite(col)
        n = len(grid)
        # mid-ranks among the grid: ties share their average rank
        lo = np.searchsorted(grid, col[ok], side="left")
        hi = np.searchsorted(grid, col[ok], side="right")
        u = np.clip((lo + hi) / (2.0 * n), 0.5 / n, 1 - 0.5 / n)
        col[ok] = _phi_inv(u)
    return z


def _quantile(grid: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The inverse of :meth:`GaussianCopula.scores`' mid-rank map on ``grid``."""
    n = len(grid)
    return np.interp(u, (np.arange(n) + 0.5) / n, grid)


def conditional_variance(prior: GaussianPrior, miss: torch.Tensor) -> torch.Tensor:
    """(B, D): each row's missing entries' conditional variances under ``prior`` (the
    diagonal of ``(precision_mm)^-1``), 0 elsewhere."""
    p = prior.precision
    out = torch.zeros(miss.shape, dtype=p.dtype)
    for rows, idx, flat in _missing_blocks(miss):
        var = torch.diagonal(torch.linalg.inv(torch.take(p, flat)), dim1=1, dim2=2)
        out[rows] = torch.zeros_like(out[rows]).scatter(1, idx, var)
    return out


def fit_copula(x: np.ndarray, features: np.ndarray, seed: int = 0) -> GaussianCopula:
    """A :class:`GaussianCopula` of ``x`` (N, D, NaN = missing), ``features`` mapped to
    normal scores; ``seed`` seeds EM's row subsample (:func:`revml.prior.fit_gaussian`)."""
    grids = []
    for j in features:
        v = np.sort(x[np.isfinite(x[:, j]), j].astype(np.float64))
        if len(v) == 0:
            v = np.zeros(1)
        if len(v) > GRID:
            v = np.quantile(v, (np.arange(GRID) + 0.5) / GRID)
        grids.append(v)
    features = np.asarray(features, dtype=int)
    z = _scores(x, features, tuple(grids))
    observed = np.isfinite(z)
    prior = fit_gaussian(
        torch.from_numpy(np.where(observed, z, 0.0)), torch.from_numpy(observed), seed=seed
    )
    return GaussianCopula(features, tuple(grids), prior)
