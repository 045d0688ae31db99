"""The nearest training rows' opinion: the mean of a feature over the k rows most alike.

The blend's other models are smooth: a normal model, a copula, linear regressions, trees
that split on one feature at a time. A few rows that look like this one on every feature
at once can see what they miss: on the air-quality table (153 rows) a five-neighbour
imputer beat every other method of the peer suite under MNAR on one of its masks
(`benchmarks/compare_suite.py`).

:class:`Neighbours` imputes as scikit-learn's ``KNNImputer`` with its defaults: five
neighbours, uniform weights, and the nan-Euclidean distance (the squared differences over
the features both rows observe, scaled up by the share of features they share). A missing
entry of feature ``j`` becomes the mean of ``j`` over the five training rows nearest to
the row among those that observe ``j``. Two choices differ from scikit-learn's:

* equal distances are ranked by the training row's order (scikit-learn's partial sort
  leaves that order unspecified);
* an entry with no training row to learn from (no row observes ``j`` and shares a feature
  with this row) keeps the value it has, where scikit-learn writes the column's mean: in
  the blend, such an entry is left where the steps before put it.

Each row's distances and neighbours are computed from that row and the training rows
alone, in a fixed order of operations, so a row's result does not depend on the rows
imputed beside it: a chunked transform gives the same bits. Training rows beyond
:data:`MAX_REFERENCE` are a seeded subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Neighbours a missing entry averages: ``KNNImputer``'s default.
N_NEIGHBOURS = 5
#: Training rows the neighbours are looked for among at most (a seeded subset beyond): a
#: row's cost grows with their number (20,000 rows x 16 features, one thread: 3 s with
#: 1,000, 6 s with 2,000, 14 s with 5,000). The step was chosen on tables of at most 1,000
#: rows, so with at most this many donors.
MAX_REFERENCE = 1000
#: Rows x training rows whose distances are held at once.
CHUNK = 1 << 20


@dataclass(frozen=True, eq=False)
class Neighbours:
    """The training rows (``data``: (R, D) float64, scaled, NaN = missing) neighbours are
    drawn from."""

    data: np.ndarray

    def conditional_mean(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """(N, D) float64: the ``miss`` entries of ``values`` imputed from each row's
        nearest training rows (its entries outside ``miss`` are what it observes);
        ``values`` elsewhere, and where no training row can say."""
        values = np.asarray(values, dtype=np.float64)
        miss = np.asarray(miss, dtype=bool)
        out = values.copy()
        todo = np.flatnonzero(miss.any(1))
        if not len(todo) or not len(self.data):
            return out
        per = max(1, CHUNK // len(self.data))
        for start in range(0, len(todo), per):
            rows = todo[start : start + per]
            out[rows] = self._rows(values[rows], miss[rows])
        return out

    def _rows(self, values: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """:meth:`conditional_mean` of a few rows (each computed on its own)."""
        ref = self.data
        ref_seen = np.isfinite(ref)
        seen = ~miss & np.isfinite(values)
        dist = _distances(values, seen, ref, ref_seen)
        order = np.argsort(dist, axis=1, kind="stable")  # ties: the training rows' order
        reachable = np.isfinite(np.take_along_axis(dist, order, axis=1))
        out = values.copy()
        for j in np.flatnonzero(miss.any(0)):
            rows = np.flatnonzero(miss[:, j])
            ranked = order[rows]
            donor = ref_seen[ranked, j] & reachable[rows]
            taken = donor & (np.cumsum(donor, axis=1) <= N_NEIGHBOURS)
            count = taken.sum(1)
            total = np.where(taken, ref[ranked, j], 0.0).sum(1)
            found = count > 0
            out[rows[found], j] = total[found] / count[found]
        return out


def _distances(
    values: np.ndarray, seen: np.ndarray, ref: np.ndarray, ref_seen: np.ndarray
) -> np.ndarray:
    """(Q, R) squared nan-Euclidean distances: over the features both rows observe,
    scaled by all features over their number; infinite where they share none. Summed
    feature by feature in order, so a row's distances never depend on the others (the
    shared counts are whole numbers, exact in a product of 0/1 matrices)."""
    n_features = values.shape[1]
    q = np.where(seen, values, 0.0)
    r = np.where(ref_seen, ref, 0.0)
    total = np.zeros((len(values), len(ref)))
    diff = np.empty_like(total)
    for j in range(n_features):
        np.subtract.outer(q[:, j], r[:, j], out=diff)
        diff *= seen[:, j, None]  # 0 unless both rows observe feature j
        diff *= ref_seen[None, :, j]
        np.square(diff, out=diff)
        total += diff
    shared = seen.astype(np.float64) @ ref_seen.T.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(shared > 0, total * (n_features / np.maximum(shared, 1)), np.inf)


def fit_neighbours(data: np.ndarray, seed: int) -> Neighbours:
    """:class:`Neighbours` over the rows of ``data`` (scaled, NaN = missing) that observe
    anything, at most :data:`MAX_REFERENCE` of them (a subset seeded by ``seed``, in their
    order)."""
    data = np.asarray(data, dtype=np.float64)
    data = data[~np.isnan(data).all(1)]
    if len(data) > MAX_REFERENCE:
        pick = np.random.default_rng([seed, 0x4E4E]).choice(len(data), MAX_REFERENCE, replace=False)
        data = data[np.sort(pick)]
    return Neighbours(np.ascontiguousarray(data))
