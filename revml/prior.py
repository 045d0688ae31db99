"""A Gaussian prior on the completed sample, fitted to data with missing entries.

Reverse training can add ``prior_weight / D * (x - mu)^T Lambda (x - mu)`` to its loss
(:mod:`revml.reference`): the negative log-density, up to constants, of a multivariate
normal with mean ``mu`` and precision ``Lambda`` fitted to the training data. On tables a few
hundred rows long, the autoencoder alone does not reach the precision of the near-linear
relations between columns that such a model captures; the prior supplies them, and the
autoencoder term the rest.

The normal is fitted by expectation-maximisation on the observed entries (each row's
missing entries are filled with their conditional mean, and the conditional covariance is
added to the scatter), with a small ridge on the covariance so constant or collinear
columns still give a finite precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Ridge added to the covariance's diagonal, relative to its mean diagonal.
RIDGE = 1e-3
#: EM iterations, and the rows EM reads at most (a seeded random subset beyond that).
EM_ITERS = 40
#: EM stops early once the mean and covariance move less than this (relative to the mean
#: variance) in one iteration.
TOLERANCE = 1e-6
EM_MAX_ROWS = 10_000
#: Largest number of (D x D) matrices solved at once (bounds the memory of a batch).
_SOLVE_ELEMENTS = 1 << 24


@dataclass(frozen=True, eq=False)
class GaussianPrior:
    """A multivariate normal: ``mean`` (D,) and ``precision`` (D, D), float64 on the CPU
    unless moved with :meth:`to`."""

    mean: torch.Tensor
    precision: torch.Tensor

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """The same prior with its tensors on ``device`` in ``dtype``."""
        return GaussianPrior(
            self.mean.to(device=device, dtype=dtype),
            self.precision.to(device=device, dtype=dtype).contiguous(),
        )

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean)^T precision (x - mean)`` per row (B,)."""
        z = x - self.mean.to(x.dtype)
        return ((z @ self.precision.to(x.dtype)) * z).sum(dim=1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient of :meth:`energy` per row: ``2 precision (x - mean)`` (B, D)."""
        return 2.0 * (x - self.mean.to(x.dtype)) @ self.precision.to(x.dtype)

    def conditional_mean(self, x: torch.Tensor, miss: torch.Tensor) -> torch.Tensor:
        """``E[x_miss | x_observed]`` under the prior; observed entries pass unchanged."""
        return self.combine(x, x, miss, weight=1.0, evidence=0.0)

    def combine(
        self,
        c: torch.Tensor,
        x: torch.Tensor,
        miss: torch.Tensor,
        weight: float,
        evidence: float = 1.0,
    ) -> torch.Tensor:
        """Missing entries minimising ``evidence * ||x_m - c_m||^2 + weight * energy(x)``.

        ``c`` is an estimate of the missing entries (the autoencoder's clean pass), counted
        as an observation of them with weight ``evidence`` against the prior's ``weight``;
        ``evidence=0`` gives the prior's conditional mean. Closed form, one
        ``|m| x |m|`` system per row: ``(evidence I + weight P_mm) z_m = evidence (c_m -
        mean_m) - weight P_mo z_o`` with ``z = x - mean``. Observed entries of ``x`` are
        returned unchanged.
        """
        if weight < 0 or evidence < 0 or weight + evidence <= 0:
            raise ValueError(
                f"weight and evidence must be >= 0 and not both 0, got {weight}, {evidence}"
            )
        dtype = torch.float64
        mean = self.mean.to(device=x.device, dtype=dtype)
        prec = self.precision.to(device=x.device, dtype=dtype)
        z = torch.where(miss, 0.0, x.to(dtype) - mean)
        rhs = -weight * (z @ prec)
        if evidence:
            rhs = rhs + evidence * (c.to(dtype) - mean)
        zm, _ = _solve_missing_blocks(weight * prec, evidence, rhs, miss)
        return torch.where(miss, (mean + zm).to(x.dtype), x)


def _missing_blocks(miss: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """The batches :func:`_solve_missing_blocks` solves for the mask ``miss`` (B, D): each
    a run of rows with the same number ``k`` of missing entries (at most
    :data:`_SOLVE_ELEMENTS` block entries a batch): (rows, each row's missing features
    (R, k), their (R, k, k) block's entries in a flattened (D, D) matrix). EM's mask is the
    same every iteration: it plans once."""
    counts = miss.sum(dim=1)
    order = torch.argsort(counts, stable=True)
    order = order[counts[order] > 0]
    plan, start = [], 0
    while start < order.numel():
        k = int(counts[order[start]])
        same = int((counts[order[start:]] == k).sum())  # sorted: the run of size k
        stop = start + max(1, min(same, _SOLVE_ELEMENTS // (k * k)))
        rows = order[start:stop]
        # The first k columns of each row's stable sort put its missing features first.
        idx = torch.argsort((~miss[rows]).to(torch.int8), dim=1, stable=True)[:, :k]
        # each block entry's place in a flattened (D, D) matrix, for torch.take
        plan.append((rows, idx, idx[:, :, None] * miss.shape[1] + idx[:, None, :]))
        start = stop
    return plan


def _solve_missing_blocks(
    a: torch.Tensor,
    shift: float,
    rhs: torch.Tensor,
    miss: torch.Tensor,
    inverse: bool = False,
    plan: list[tuple[torch.Tensor, ...]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per row, solve ``(a_mm + shift I) y_m = rhs_m`` on its missing block ``m``.

    Returns ``y`` (B, D), zero off the missing entries, and with ``inverse`` the sum over
    rows of ``(a_mm + shift I)^-1`` scattered into a (D, D) matrix. Rows are grouped by
    their number of missing entries ``k`` and each group solved as a batch of ``k x k``
    systems, so a row costs ``O(k^3)``, not ``O(D^3)``, and its arithmetic is its own:
    no padding to another row's size, so which rows share a call (chunking, batch size)
    cannot move a result by a rounding. ``plan``: :func:`_missing_blocks` of ``miss``,
    when the caller has it.
    """
    n, d = miss.shape
    out = torch.zeros(n, d, dtype=a.dtype, device=a.device)
    total = torch.zeros(d, d, dtype=a.dtype, device=a.device) if inverse else None
    for rows, idx, flat in _missing_blocks(miss) if plan is None else plan:
        k = idx.shape[1]
        eye = torch.eye(k, dtype=a.dtype, device=a.device)
        block = torch.take(a, flat) + shift * eye
        b = torch.gather(rhs[rows], 1, idx)
        if inverse:
            inv = torch.linalg.inv(block)
            y = (inv @ b[:, :, None])[:, :, 0]
            total.index_put_(
                (idx[:, :, None].expand_as(inv), idx[:, None, :].expand_as(inv)),
                inv,
                accumulate=True,
            )
        else:
            y = torch.linalg.solve(block, b[:, :, None])[:, :, 0]
        out[rows] = torch.zeros_like(out[rows]).scatter(1, idx, y)
    return out, total


def fit_gaussian(
    x: torch.Tensor,
    observed: torch.Tensor,
    *,
    iters: int = EM_ITERS,
    max_rows: int = EM_MAX_ROWS,
    seed: int = 0,
) -> GaussianPrior:
    """Fit a :class:`GaussianPrior` to ``x`` (N, D) by EM over its ``observed`` entries.

    Rows beyond ``max_rows`` are subsampled (seeded). Features never observed get mean 0 and
    unit variance. Runs in float64 on ``x``'s device.
    """
    if x.dim() != 2 or observed.shape != x.shape:
        raise ValueError(
            f"x must be (N, D) with an observed mask of the same shape, got "
            f"{tuple(x.shape)} and {tuple(observed.shape)}"
        )
    n = x.shape[0]
    if n > max_rows:
        gen = torch.Generator().manual_seed(int(seed))
        pick = torch.randperm(n, generator=gen)[:max_rows].sort().values.to(x.device)
        x, observed = x[pick], observed[pick]
        n = max_rows
    x = x.to(torch.float64)
    miss = ~observed
    counts = observed.sum(0)
    empty = counts == 0
    mean = torch.where(observed, x, 0.0).sum(0) / counts.clamp_min(1)
    filled = torch.where(observed, x, mean)
    cov = _covariance(filled, mean, None, n, empty)
    partial = miss.any(dim=1)
    xp, mp = torch.where(miss, 0.0, x)[partial], miss[partial]
    plan = _missing_blocks(mp)
    for _ in range(iters if bool(partial.any()) else 0):
        precision = torch.linalg.inv(cov)
        # E-step: conditional means of the missing entries and their covariance's sum.
        z = torch.where(mp, 0.0, xp - mean)
        zm, extra = _solve_missing_blocks(
            precision, 0.0, -(z @ precision), mp, inverse=True, plan=plan
        )
        filled = filled.clone()
        filled[partial] = torch.where(mp, mean + zm, xp)
        new_mean = filled.mean(0)
        new_cov = _covariance(filled, new_mean, extra, n, empty)
        change = float((new_cov - cov).abs().max()) + float((new_mean - mean).abs().max())
        mean, cov = new_mean, new_cov
        if change <= TOLERANCE * float(torch.diagonal(cov).mean()):
            break
    # contiguous: a loaded prior is, and the same layout gives the same rounding
    return GaussianPrior(mean, torch.linalg.inv(cov).contiguous())


def _covariance(filled, mean, extra, n, empty) -> torch.Tensor:
    """Scatter (plus EM's conditional covariance) over ``n``, with a relative ridge; a
    feature never observed is independent of the rest with unit variance."""
    dev = filled - mean
    cov = dev.T @ dev
    if extra is not None:
        cov = cov + extra
    cov = cov / max(n, 1)
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    if bool(empty.any()):
        cov = torch.where(empty[:, None] | empty[None, :], eye, cov)
    scale = float(torch.diagonal(cov).mean()) if cov.numel() else 1.0
    return cov + RIDGE * (scale if scale > 0 else 1.0) * eye
