"""Missingness simulation and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from revml import masks, metrics


def test_mcar_rate_and_seed():
    m = masks.mcar((400, 50), 0.3, seed=3)
    assert abs(m.mean() - 0.3) < 0.01
    assert np.array_equal(m, masks.mcar((400, 50), 0.3, seed=3))
    assert not np.array_equal(m, masks.mcar((400, 50), 0.3, seed=4))
    with pytest.raises(ValueError, match="rate"):
        masks.mcar((2, 2), 1.5)


def test_row_band_is_contiguous_full_rows():
    m = masks.row_band(300, rows=10, seed=0).reshape(300, 28, 28)
    assert (m.sum(axis=(1, 2)) == 280).all()
    rows = m.any(axis=2)
    assert (m.all(axis=2) == rows).all()  # whole pixel rows
    for r in rows:
        idx = np.flatnonzero(r)
        assert idx[-1] - idx[0] == 9  # contiguous
    tops = {int(np.flatnonzero(r)[0]) for r in rows}
    assert tops == set(range(19))  # every position occurs
    assert np.array_equal(m.reshape(300, -1), masks.row_band(300, rows=10, seed=0))


def test_blocks():
    c = masks.block(2, position="center").reshape(2, 28, 28)
    assert c[0, 7:21, 7:21].all() and c.sum() == 2 * 196
    left = masks.block(1, block_height=28, block_width=14, position="left").reshape(28, 28)
    assert left[:, :14].all() and not left[:, 14:].any()
    r = masks.block(50, block_height=5, block_width=3, seed=1)
    assert (r.sum(1) == 15).all()
    with pytest.raises(ValueError, match="does not fit"):
        masks.block(1, block_height=30)


def test_apply_copies():
    x = np.arange(6.0).reshape(2, 3)
    m = np.array([[True, False, False], [False, False, True]])
    out = masks.apply(x, m)
    assert np.isnan(out[m]).all() and not np.isnan(x).any()


def test_metrics_by_hand():
    truth = np.array([[0.0, 1.0, 1.0, 0.0]])
    pred = np.array([[0.4, 0.6, 0.2, 0.9]])
    mask = np.array([[True, True, True, False]])
    assert metrics.binary_accuracy(pred, truth) == 0.5
    assert metrics.binary_accuracy(pred, truth, mask) == pytest.approx(2 / 3)
    assert metrics.rmse(pred, truth, mask) == pytest.approx(np.sqrt((0.16 + 0.16 + 0.64) / 3))
    assert metrics.mae(pred, truth, mask) == pytest.approx((0.4 + 0.4 + 0.8) / 3)
    with pytest.raises(ValueError, match="no entry"):
        metrics.rmse(pred, truth, np.zeros_like(mask))
