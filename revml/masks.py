"""Seeded missingness simulation. Every function returns a boolean mask, True = missing."""

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
