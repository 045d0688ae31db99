"""Seeded missingness simulation. Every function returns a boolean mask, True = missing.

``mcar``, ``mar`` and ``mnar`` are the three classical mechanisms for tables;
``row_band`` and ``block`` damage images.
"""

from __future__ import annotations

import numpy as np


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def mcar(
    shape: tuple[int, int], rate: float, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Missing completely at random: each entry independently with probability ``rate``.

    Examples
    --------
    >>> mcar((2, 3), 0.5, seed=0).shape
    (2, 3)
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    return _rng(seed).random(shape) < rate


def row_band(
    n: int,
    height: int = 28,
    width: int = 28,
    rows: int = 10,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Images with ``rows`` contiguous pixel rows missing at a random position each.

    The damage of the MNIST experiment: 10 of 28 rows, placed uniformly among the 19
    possible positions per image. Returns a flat (n, height * width) mask.

    Examples
    --------
    >>> m = row_band(4, seed=1)
    >>> m.shape, int(m[0].sum())
    ((4, 784), 280)
    """
    if not 0 < rows <= height:
        raise ValueError(f"rows must be in [1, {height}], got {rows}")
    top = _rng(seed).integers(0, height - rows + 1, size=n)
    r = np.arange(height)
    band = (r[None, :] >= top[:, None]) & (r[None, :] < top[:, None] + rows)
    return np.repeat(band[:, :, None], width, axis=2).reshape(n, height * width)


def block(
    n: int,
    height: int = 28,
    width: int = 28,
    block_height: int = 14,
    block_width: int = 14,
    position: str = "random",
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Images with a rectangular block missing: at a random position each, or centred.

    ``position="left"`` with ``block_width=width // 2`` and ``block_height=height`` hides
    the left half. Returns a flat (n, height * width) mask.

    Examples
    --------
    >>> int(block(1, position="center")[0].sum())
    196
    """
    if not (0 < block_height <= height and 0 < block_width <= width):
        raise ValueError(f"block {block_height}x{block_width} does not fit {height}x{width}")
    if position == "random":
        rng = _rng(seed)
        top = rng.integers(0, height - block_height + 1, size=n)
        left = rng.integers(0, width - block_width + 1, size=n)
    elif position == "center":
        top = np.full(n, (height - block_height) // 2)
        left = np.full(n, (width - block_width) // 2)
    elif position == "left":
        top = np.full(n, (height - block_height) // 2)
        left = np.zeros(n, dtype=int)
    else:
        raise ValueError(f"position must be 'random', 'center' or 'left', got {position!r}")
    r = np.arange(height)[None, :, None]
    c = np.arange(width)[None, None, :]
    t, lft = top[:, None, None], left[:, None, None]
    m = (r >= t) & (r < t + block_height) & (c >= lft) & (c < lft + block_width)
    return m.reshape(n, height * width)


def apply(X: np.ndarray, mask: np.ndarray, value: float = np.nan) -> np.ndarray:
    """A float copy of ``X`` with the masked entries set to ``value`` (NaN by default)."""
    X = np.asarray(X)
    if mask.shape != X.shape:
        raise ValueError(f"mask shape {mask.shape} does not match X shape {X.shape}")
    out = X.astype(np.float64 if X.dtype.kind != "f" else X.dtype, copy=True)
    out[mask] = value
    return out


def _column_ranks(col: np.ndarray) -> np.ndarray:
    """Average ranks of a column's observed values scaled into (0, 1); NaN -> 0.5."""
    from scipy.stats import rankdata

    out = np.full(col.shape, 0.5)
    obs = ~np.isnan(col)
    if obs.any():
        out[obs] = rankdata(col[obs]) / (obs.sum() + 1)
    return out


def mar(
    X: np.ndarray,
    rate: float,
    seed: int | np.random.Generator | None = 0,
    driver: int | None = None,
) -> np.ndarray:
    """Missing at random: missingness depends on an always-observed *driver* column.

    The driver column (default: the one with the most observed values) is never hidden.
    Every other entry of row ``i`` is hidden with probability
    ``min(1, 2 * rate * d / (d - 1) * r_i)``, where ``r_i`` in (0, 1) is the rank of the
    row's driver value (0.5 where it is NaN): rows with large driver values lose more
    entries. The expected share of hidden entries is ``rate`` as long as no probability
    reaches 1 (``rate <= (d - 1) / (2 d)``).

    Examples
    --------
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> m = mar(X, 0.3, seed=0)
    >>> bool(m[:, 0].any()), m.shape
    (False, (10, 2))
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    n, d = X.shape
    if d < 2:
        raise ValueError("MAR needs at least 2 columns: one drives the missingness of the others")
    if driver is None:
        driver = int(np.argmax((~np.isnan(X)).sum(0)))
    if not 0 <= driver < d:
        raise ValueError(f"driver must be a column index in [0, {d}), got {driver}")
    p = np.clip(2.0 * rate * d / (d - 1) * _column_ranks(X[:, driver]), 0.0, 1.0)
    prob = np.repeat(p[:, None], d, axis=1)
    prob[:, driver] = 0.0
    return _rng(seed).random((n, d)) < prob


def mnar(X: np.ndarray, rate: float, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Missing not at random (self-masking): large values are hidden more often.

    Entry ``(i, j)`` is hidden with probability ``min(1, 2 * rate * r_ij)``, where
    ``r_ij`` in (0, 1) is the rank of the value within its column. Columns without numeric
    values (all NaN, e.g. categories passed as NaN) are hidden completely at random with
    probability ``rate``. The expected share is ``rate`` for ``rate <= 0.5``.

    Examples
    --------
    >>> X = np.arange(1000.0).reshape(500, 2)
    >>> m = mnar(X, 0.2, seed=0)
    >>> bool(m[250:].mean() > m[:250].mean())
    True
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    prob = np.full(X.shape, float(rate))
    for j in range(X.shape[1]):
        if not np.isnan(X[:, j]).all():
            prob[:, j] = np.clip(2.0 * rate * _column_ranks(X[:, j]), 0.0, 1.0)
    return _rng(seed).random(X.shape) < prob
