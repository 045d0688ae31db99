"""Imputation metrics. ``mask`` (True = scored) restricts each to the missing entries."""

from __future__ import annotations

import numpy as np


def _select(pred, truth, mask):
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {truth.shape}")
    if mask is None:
        return pred.ravel(), truth.ravel()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != truth.shape:
        raise ValueError(f"mask shape {mask.shape} does not match {truth.shape}")
    if not mask.any():
        raise ValueError("mask selects no entry")
    return pred[mask], truth[mask]


def binary_accuracy(pred, truth, mask=None, threshold: float = 0.5) -> float:
    """Share of entries on the same side of ``threshold`` (the seed's pixel accuracy).

    Examples
    --------
    >>> binary_accuracy([[0.2, 0.9]], [[0.0, 1.0]])
    1.0
    """
    p, t = _select(pred, truth, mask)
    return float(np.mean((p >= threshold) == (t >= threshold)))


def rmse(pred, truth, mask=None) -> float:
    """Root mean squared error."""
    p, t = _select(pred, truth, mask)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(pred, truth, mask=None) -> float:
    """Mean absolute error."""
    p, t = _select(pred, truth, mask)
    return float(np.mean(np.abs(p - t)))


def image_scores(pred, truth, mask) -> dict[str, float]:
    """The MNIST table's columns: missing-pixel accuracy, RMSE, MAE, whole-image accuracy."""
    return {
        "missing_accuracy": binary_accuracy(pred, truth, mask),
        "missing_rmse": rmse(pred, truth, mask),
        "missing_mae": mae(pred, truth, mask),
        "image_accuracy": binary_accuracy(pred, truth),
    }
