"""Masked training, hiding dropout, the averaged clean pass and the exact kNN fill."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.impute import KNNImputer

from revml import ReverseImputer
from revml.baselines import nearest_neighbour_fill
from revml.model import MLPAutoencoder, default_architecture
from revml.reference import ReverseConfig, clean_pass, dropout_keep, reverse_loss
from revml.training import TrainConfig, default_train_config, mixed_masks, train_autoencoder

FAST = {"epochs": 15, "n_steps": 25, "random_state": 0, "backend": "reference"}


def test_mixed_masks_mix_scattered_entries_and_runs():
    gen = torch.Generator().manual_seed(0)
    m = mixed_masks(4000, 40, gen)
    rate = m.float().mean().item()
    assert 0.25 < rate < 0.35  # E = 0.5 * 0.4 + 0.5 * E[run] / 40 ~ 0.3
    # A contiguous run has exactly one start; scattered masks usually have several.
    starts = (m[:, 1:] & ~m[:, :-1]).sum(1) + m[:, 0]
    assert (starts == 1).float().mean() > 0.5
    assert m.sum(1).max() <= 40 and (m.sum(1) == 0).float().mean() < 0.05
    again = mixed_masks(4000, 40, torch.Generator().manual_seed(0))
    assert torch.equal(m, again)


def test_mixed_masks_with_an_image_shape_hide_rectangles():
    m = mixed_masks(3000, 12 * 10, torch.Generator().manual_seed(1), (12, 10)).reshape(-1, 12, 10)
    rows, cols = m.any(2), m.any(1)
    # A rectangle: its hidden pixels are exactly (hidden rows) x (hidden columns).
    rect = (m == (rows[:, :, None] & cols[:, None, :])).all((1, 2)) & (m.sum((1, 2)) > 0)
    narrow = rect & (cols.sum(1) < 10) & (rows.sum(1) > 1)  # not a band of whole rows
    assert narrow.float().mean() > 0.15
    assert m.float().mean((1, 2)).max() <= 1.0


def test_training_rejects_a_wrong_image_shape():
    module = MLPAutoencoder(12, (8,), 3)
    x = torch.rand(32, 12)
    with pytest.raises(ValueError, match="image_shape"):
        train_autoencoder(
            module, x, torch.zeros(12), TrainConfig(epochs=1, masking="mixed", image_shape=(5, 5))
        )
    with pytest.raises(ValueError, match="masking"):
        train_autoencoder(module, x, torch.zeros(12), TrainConfig(epochs=1, masking="bands"))
    with pytest.raises(ValueError, match="image_shape"):
        ReverseImputer(image_shape=(3, 3), **FAST).fit(np.random.default_rng(0).random((40, 12)))


def test_masked_defaults_size_the_autoencoder_and_training():
    assert default_architecture(784, masked=True) == ((1024, 512), 64)
    assert default_architecture(10, masked=True) == ((64, 32), 5)
    plain, masked = default_train_config(60_000), default_train_config(60_000, masked=True)
    assert masked.batch_size == plain.batch_size and masked.epochs > plain.epochs


def test_hiding_dropout_does_not_rescale_the_kept_inputs():
    torch.manual_seed(0)
    ae = MLPAutoencoder(16, (12,), 4).double()
    x = torch.rand(5, 16, dtype=torch.float64)
    miss = torch.rand(5, 16) < 0.3
    rows = torch.arange(5)
    keep = dropout_keep(3, rows, 1, 16, 0.4)
    hide = ReverseConfig(dropout=0.4, dropout_rescale=False)
    scale = ReverseConfig(dropout=0.4, dropout_rescale=True)
    want_hide = (ae(x * keep) - x) ** 2
    w = torch.where(miss, hide.missing_weight, 1.0)
    expected = (w * want_hide).sum(1) / 16
    h = ae.encoder(x * keep)
    expected = expected + hide.sphere_weight * ((h.norm(dim=1) - 1.0) / 1.0) ** 2
    torch.testing.assert_close(reverse_loss(ae, x, miss, keep, hide), expected)
    assert not torch.allclose(reverse_loss(ae, x, miss, keep, scale), expected)


def test_averaged_clean_pass_is_the_mean_over_later_dropout_masks():
    torch.manual_seed(1)
    ae = MLPAutoencoder(10, (8,), 3).double()
    x = torch.rand(6, 10, dtype=torch.float64)
    miss = torch.rand(6, 10) < 0.4
    rows = torch.arange(100, 106)
    cfg = ReverseConfig(n_steps=7, dropout=0.25, dropout_rescale=False, seed=5)
    got = clean_pass(ae, x, miss, cfg, rows, samples=3)
    outs = [ae(x * dropout_keep(5, rows, 8 + k, 10, 0.25)) for k in range(3)]
    torch.testing.assert_close(got, torch.where(miss, sum(outs) / 3, x))
    # Row-keyed: a row's value does not depend on the batch around it.
    torch.testing.assert_close(clean_pass(ae, x[2:4], miss[2:4], cfg, rows[2:4], 3), got[2:4])
    assert torch.equal(clean_pass(ae, x, miss, cfg, rows, 1), torch.where(miss, ae(x), x))
    with pytest.raises(ValueError, match="sample indices"):
        clean_pass(ae, x, miss, cfg, None, samples=3)


def test_masked_imputer_round_trips_and_keeps_its_settings(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    x = z @ rng.normal(size=(3, 9))
    x[rng.random(x.shape) < 0.2] = np.nan
    imp = ReverseImputer(**FAST).fit(x)
    assert imp.masked_ and not imp.reverse_config().dropout_rescale
    out = imp.transform(x)
    loaded = ReverseImputer.load(imp.save(tmp_path / "imp"))
    assert loaded.masked_
    np.testing.assert_array_equal(loaded.transform(x), out)
    assert ReverseImputer(masking="none", **FAST).fit(x).reverse_config().dropout_rescale
    with pytest.raises(ValueError, match="clean_samples"):
        ReverseImputer(clean_samples=0, **FAST).fit(x)
    with pytest.raises(ValueError, match="self_condition"):
        ReverseImputer(self_condition=1.5, **FAST).fit(x)
    with pytest.raises(ValueError, match="dropout_mode"):
        ReverseImputer(dropout_mode="drop", **FAST).fit(x)


def test_nearest_neighbour_fill_equals_knn_imputer():
    rng = np.random.default_rng(2)
    refs = rng.random((300, 25))
    x = rng.random((120, 25))
    x[rng.random(x.shape) < 0.4] = np.nan
    x[5] = np.nan  # an all-missing row: the references' column means
    x[7] = rng.random(25)  # a complete row passes through
    got = nearest_neighbour_fill(refs, x, 5, batch_size=32)
    want = KNNImputer(n_neighbors=5).fit(refs).transform(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[7], x[7])
    with pytest.raises(ValueError, match="complete"):
        nearest_neighbour_fill(np.where(refs > 0.99, np.nan, refs), x)
    with pytest.raises(ValueError, match="n_neighbors"):
        nearest_neighbour_fill(refs, x, 0)


def _table_with_gaps(n=120, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    X = np.c_[z, z @ rng.normal(size=(2, 3))] * [1, 10, 100, 0.1, 5] + [0, 50, -7, 3, 1]
    missing = X.copy()
    missing[rng.random(X.shape) < 0.2] = np.nan
    return missing


def test_center_scaling_puts_the_column_means_at_zero():
    missing = _table_with_gaps()
    imp = ReverseImputer(scaling="center", **FAST).fit(missing)
    np.testing.assert_allclose(imp.scaler_.offset, np.nanmean(missing, axis=0), rtol=1e-12)
    span = np.nanmax(missing, axis=0) - np.nanmin(missing, axis=0)
    np.testing.assert_allclose(imp.scaler_.span, span, rtol=1e-12)
    # a hidden 0 is the mean (to float32 precision)
    np.testing.assert_allclose(imp.scaler_.means, 0.0, atol=1e-6)
    assert (imp.scaler_.clip_lo < 0).all() and (imp.scaler_.clip_hi > 0).all()
    assert np.allclose(imp.scaler_.clip_hi - imp.scaler_.clip_lo, 1.0)
    out = imp.transform(missing)
    seen = ~np.isnan(missing)
    assert np.array_equal(out[seen], missing[seen])
    lo, hi = np.nanmin(missing, axis=0), np.nanmax(missing, axis=0)
    assert ((out >= lo - 1e-6 * span) & (out <= hi + 1e-6 * span)).all()
    # The same network sees the same numbers whatever the offset of the input.
    shifted = ReverseImputer(scaling="center", **FAST).fit(missing + 1000.0)
    np.testing.assert_allclose(shifted.transform(missing + 1000.0) - 1000.0, out, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "unit", "expected"),
    [
        ({}, False, "center"),  # masked training on a table
        ({}, True, "center"),  # also when the table is already in [0, 1] (a DataFrame)
        ({"image_shape": (1, 5)}, True, "none"),  # images: 0 is the blank background
        ({"image_shape": (1, 5)}, False, "minmax"),
        ({"masking": "none"}, False, "minmax"),  # the plain autoencoder, as before
        ({"masking": "none"}, True, "none"),
        ({"scaling": "minmax"}, True, "minmax"),
    ],
)
def test_auto_scaling_centres_tables_for_a_masked_autoencoder(params, unit, expected):
    missing = _table_with_gaps()
    if unit:
        lo, hi = np.nanmin(missing, axis=0), np.nanmax(missing, axis=0)
        missing = (missing - lo) / (hi - lo)
    imp = ReverseImputer(**{**FAST, **params}).fit(missing)
    offsets = {
        "center": np.nanmean(missing, axis=0),
        "minmax": np.nanmin(missing, axis=0),
        "none": np.zeros(missing.shape[1]),
    }
    np.testing.assert_allclose(imp.scaler_.offset, offsets[expected], rtol=1e-12, atol=1e-15)
