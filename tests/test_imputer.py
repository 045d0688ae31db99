"""ReverseImputer: invariants, determinism, strategies and parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from asserts import assert_close

from revml import MLPAutoencoder, ReverseImputer, masks
from revml.model import default_architecture

FAST = {"epochs": 15, "n_steps": 25, "random_state": 0, "backend": "reference"}


def low_rank_table(n=240, d=10, rank=3, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, rank))
    return z @ rng.normal(size=(rank, d)) + 0.05 * rng.normal(size=(n, d)) + 3.0


@pytest.fixture
def table():
    x = low_rank_table()
    miss = masks.mcar(x.shape, 0.25, seed=1)
    return x, miss, masks.apply(x, miss)


def test_default_architecture_sizes_from_features():
    assert default_architecture(784) == ((512, 128), 12)
    hidden, code = default_architecture(10)
    assert code < 10 // 2 + 1 and hidden[0] >= 2 * 10
    with pytest.raises(ValueError, match="at least 2 features"):
        default_architecture(1)


@pytest.mark.parametrize("strategy", ["reverse", "direct"])
def test_observed_bit_identical_and_input_not_mutated(table, strategy):
    _, miss, x_nan = table
    before = x_nan.copy()
    out = ReverseImputer(strategy=strategy, dropout=0.1, **FAST).fit_transform(x_nan)
    np.testing.assert_array_equal(x_nan, before)  # NaNs compare equal here
    assert out.dtype == x_nan.dtype and out.shape == x_nan.shape
    assert np.array_equal(out[~miss], x_nan[~miss])
    assert np.isfinite(out).all()


def test_torch_tensor_in_tensor_out(table):
    _, miss, x_nan = table
    t = torch.from_numpy(x_nan).float()
    before = t.clone()
    imp = ReverseImputer(**FAST).fit(t)
    out = imp.transform(t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert torch.equal(torch.isnan(t), torch.isnan(before)) and torch.equal(
        t[~torch.isnan(t)], before[~torch.isnan(before)]
    )
    m = torch.from_numpy(miss)
    assert torch.equal(out[~m], t[~m]) and torch.isfinite(out).all()


def test_reverse_beats_mean_and_direct_on_low_rank_data(table):
    x, miss, x_nan = table
    imp = ReverseImputer(random_state=0, backend="reference").fit(x_nan)
    span = x.max(0) - x.min(0)

    def err(pred):
        return float(np.sqrt(np.mean(((pred - x) / span)[miss] ** 2)))

    mean_fill = np.where(miss, np.nanmean(x_nan, axis=0), x_nan)
    rev = err(imp.transform(x_nan))
    direct = err(imp.set_params(strategy="direct").transform(x_nan))
    assert rev < 0.6 * err(mean_fill), (rev, err(mean_fill))
    assert rev < direct, (rev, direct)


def test_same_seed_same_result_different_seed_differs(table):
    _, _, x_nan = table
    a = ReverseImputer(dropout=0.2, **FAST).fit_transform(x_nan)
    b = ReverseImputer(dropout=0.2, **FAST).fit_transform(x_nan)
    assert np.array_equal(a, b)
    c = ReverseImputer(dropout=0.2, **{**FAST, "random_state": 1}).fit_transform(x_nan)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_result_does_not_depend_on_batch_size_or_composition(table, dropout):
    _, _miss, x_nan = table
    imp = ReverseImputer(dropout=dropout, **FAST).fit(x_nan)
    full = imp.set_params(batch_size=256).transform(x_nan)
    for bs in (1, 7, 64):
        got = imp.set_params(batch_size=bs).transform(x_nan)
        # Only float rounding differs: BLAS blocks GEMMs differently per batch shape.
        assert_close(
            torch.from_numpy(got),
            torch.from_numpy(full),
            rtol=1e-4,
            atol=1e-5,
            name=f"batch_size={bs}",
        )
    # A sample's result does not depend on which other rows are imputed with it.
    rows = np.array([3, 17, 100, 200])
    # ...but the counter-based dropout and restart noise key on the position in the call,
    # so compare with dropout off and one run, where position does not matter.
    if dropout == 0.0:
        imp.set_params(n_restarts=1)
        alone = imp.set_params(batch_size=256).transform(x_nan[rows])
        assert_close(
            torch.from_numpy(alone),
            torch.from_numpy(imp.transform(x_nan)[rows]),
            rtol=1e-4,
            atol=1e-5,
            name="subset",
        )


def test_switching_strategy_backend_batch_does_not_refit(table):
    _, _, x_nan = table
    imp = ReverseImputer(**FAST).fit(x_nan)
    ae = imp.autoencoder_
    weights = [p.clone() for p in ae.parameters()]
    imp.set_params(strategy="direct", batch_size=5).transform(x_nan)
    imp.set_params(strategy="reverse", backend="reference").transform(x_nan)
    assert imp.autoencoder_ is ae
    assert all(torch.equal(a, b) for a, b in zip(weights, ae.parameters(), strict=True))
    assert not any(p.requires_grad for p in ae.parameters())


def test_transform_new_rows_without_refit(table):
    _x, _, x_nan = table
    imp = ReverseImputer(**FAST).fit(x_nan)
    new = low_rank_table(n=30, seed=0)[:30].copy()
    new[0, :4] = np.nan
    out = imp.transform(new)
    assert np.isfinite(out).all() and np.array_equal(out[1:], new[1:])


@pytest.mark.parametrize("init", ["zeros", "mean", "direct"])
def test_inits(table, init):
    _, miss, x_nan = table
    imp = ReverseImputer(init=init, **FAST).fit(x_nan)
    start = imp.initial_values(x_nan)
    if init == "mean":
        np.testing.assert_allclose(
            start[miss], np.broadcast_to(np.nanmean(x_nan, 0), x_nan.shape)[miss], rtol=1e-5
        )
    assert np.isfinite(imp.transform(x_nan)).all()


def test_clamp_keeps_values_in_training_range(table):
    _, _miss, x_nan = table
    imp = ReverseImputer(clamp=True, reverse_lr=0.5, **FAST).fit(x_nan)
    out = imp.transform(x_nan)
    lo, hi = np.nanmin(x_nan, 0), np.nanmax(x_nan, 0)
    assert (out >= lo - 1e-6).all() and (out <= hi + 1e-6).all()


def test_pretrained_autoencoder_is_used_and_not_modified(table):
    _, _miss, x_nan = table
    ae = MLPAutoencoder(10, hidden=(16,), bottleneck=3, output_activation="identity")
    state = {k: v.clone() for k, v in ae.state_dict().items()}
    imp = ReverseImputer(autoencoder=ae, scaling="minmax", **FAST).fit(x_nan)
    assert imp.history_ == []
    out = imp.transform(x_nan)
    assert np.isfinite(out).all()
    assert all(torch.equal(state[k], v) for k, v in ae.state_dict().items())
    assert all(p.requires_grad for p in ae.parameters())  # the caller's copy stays trainable


def test_any_module_without_bottleneck_needs_sphere_weight_zero(table):
    _, _, x_nan = table
    net = torch.nn.Sequential(torch.nn.Linear(10, 3), torch.nn.ReLU(), torch.nn.Linear(3, 10))
    imp = ReverseImputer(autoencoder=net, sphere_weight=0.01, **FAST).fit(x_nan)
    with pytest.raises(ValueError, match="sphere_weight"):
        imp.transform(x_nan)
    out = imp.set_params(sphere_weight=0.0).transform(x_nan)
    assert np.isfinite(out).all()


def test_training_with_missing_values_and_masking(table):
    _, _, x_nan = table
    imp = ReverseImputer(masking="none", mask_fraction=0.3, **FAST).fit(x_nan)
    assert len(imp.history_) == FAST["epochs"] and np.isfinite(imp.history_).all()
    assert not imp.masked_
    imp = ReverseImputer(**FAST).fit(x_nan)  # masking="mixed" with self-conditioning
    assert imp.masked_ and np.isfinite(imp.history_).all()
    assert np.isfinite(imp.transform(x_nan)).all()


def test_mask_fraction_needs_plain_masking(table):
    _, _, x_nan = table
    with pytest.raises(ValueError, match="mask_fraction"):
        ReverseImputer(mask_fraction=0.3, **FAST).fit(x_nan)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"strategy": "forward"}, "strategy"),
        ({"init": "random"}, "init"),
        ({"backend": "cuda"}, "backend"),
        ({"dropout": 1.0}, "dropout"),
        ({"batch_size": 0}, "batch_size"),
        ({"reverse_lr": 0.0}, "reverse_lr"),
    ],
)
def test_bad_parameters_are_named(table, params, match):
    _, _, x_nan = table
    with pytest.raises(ValueError, match=match):
        ReverseImputer(**{**FAST, **params}).fit(x_nan)


def test_bad_input_errors(table):
    _, _, x_nan = table
    imp = ReverseImputer(**FAST)
    with pytest.raises(ValueError, match="2-D"):
        imp.fit(x_nan[0])
    with pytest.raises(ValueError, match="no rows"):
        imp.fit(x_nan[:0])
    bad = x_nan.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        imp.fit(bad)
    with pytest.raises(TypeError, match="numeric"):
        imp.fit(np.array([["a", "b"], ["c", "d"]], dtype=object))
    with pytest.raises(ValueError, match="every entry is missing"):
        imp.fit(np.full((4, 3), np.nan))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ReverseImputer().transform(x_nan)
    imp.fit(x_nan)
    with pytest.raises(ValueError, match="10"):
        imp.transform(x_nan[:, :5])


def test_no_missing_returns_a_copy(table):
    x, _, _ = table
    imp = ReverseImputer(**FAST).fit(x)
    out = imp.transform(x)
    assert np.array_equal(out, x) and out is not x


def test_direct_output_is_the_whole_reconstruction_of_each_row(table):
    _, miss, x_nan = table
    imp = ReverseImputer(**FAST).fit(x_nan)
    out = imp.direct_output(x_nan)
    xs = (np.where(miss, np.nan, x_nan) - imp.scaler_.offset) / imp.scaler_.span
    # An AE trained with masking saw missing entries as 0; a plain one gets the means.
    assert imp.masked_
    filled = np.where(miss, 0.0, xs)
    with torch.no_grad():
        expect = imp.autoencoder_(torch.from_numpy(filled).float()).double().numpy()
    expect = expect * imp.scaler_.span + imp.scaler_.offset
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[0], out[1])  # each row is reconstructed from its own input


def test_diverging_rows_fall_back_to_their_start_with_a_warning(table):
    _, miss, x_nan = table

    class Blowup(torch.nn.Module):
        def forward(self, x):
            return torch.where(x[:, :1] > 0.5, torch.full_like(x, float("nan")), x * 0.9)

    class Exploding(torch.nn.Module):
        """An AE whose output is non-finite for rows whose first feature is large."""

        def __init__(self):
            super().__init__()
            self.encoder = Blowup()
            self.decoder = torch.nn.Identity()

        def forward(self, x):
            return self.decoder(self.encoder(x))

    imp = ReverseImputer(autoencoder=Exploding(), sphere_weight=0.0, clean_pass=False, **FAST).fit(
        x_nan
    )
    with pytest.warns(RuntimeWarning, match="diverged"):
        out = imp.transform(x_nan)
    assert np.isfinite(out).all()
    assert np.array_equal(out[~miss], x_nan[~miss])
