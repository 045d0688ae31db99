"""The Gaussian copula step of the tree blend (revml.copula, revml.blending)."""

from __future__ import annotations

import blend_steps as steps
import numpy as np
import pytest
import torch

from revml import ReverseImputer
from revml.copula import GRID, conditional_variance, fit_copula
from revml.prior import fit_gaussian

FAST = {"epochs": 30, "n_steps": 20, "random_state": 0}


def _correlated(n=600, seed=0, skew=True):
    """Three columns driven by one normal factor; with ``skew`` two of them through
    monotone nonlinear maps (exp, cube), so the joint law is a Gaussian copula."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    cols = [f + 0.3 * rng.normal(size=n) for _ in range(3)]
    if skew:
        cols[1] = np.exp(1.2 * cols[1])
        cols[2] = cols[2] ** 3
    return np.column_stack(cols)


def _hide(x, rate=0.25, seed=1):
    return steps.hide(x, rate, seed)


def test_scores_are_normal_and_monotone():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(2000, 1))
    cop = fit_copula(x, np.array([0]))
    z = cop.scores(x)[:, 0]
    assert len(cop.grids[0]) == GRID  # more values than the grid keeps: its quantiles
    order = np.argsort(x[:, 0])
    assert (np.diff(z[order]) >= 0).all()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.03
    # outside the observed range: the ends of the scores, finite
    assert np.isfinite(cop.scores(np.array([[-5.0], [1e6]]))).all()


def test_conditional_variance_is_the_inverse_blocks_diagonal():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    prior = fit_gaussian(torch.from_numpy(x), torch.ones(x.shape, dtype=torch.bool))
    miss = rng.random(x.shape) < 0.4
    got = conditional_variance(prior, torch.from_numpy(miss)).numpy()
    p = prior.precision.numpy()
    for i in range(len(x)):
        m = miss[i]
        want = np.zeros(5)
        if m.any():
            want[m] = np.diag(np.linalg.inv(p[np.ix_(m, m)]))
        # float64 throughout: the same inverse up to a few roundings
        np.testing.assert_allclose(got[i], want, rtol=1e-10, atol=0)


def test_independent_column_imputes_its_mean():
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.exponential(size=3000), rng.normal(size=3000)])
    cop = fit_copula(x, np.array([0, 1]))
    miss = np.zeros_like(x, dtype=bool)
    miss[:50, 0] = True
    out = cop.conditional_mean(x, miss)
    # no information from column 1: the conditional mean is the marginal mean (1 for an
    # exponential), not its median (log 2); 16 nodes and a 1,000-point grid, 2%
    np.testing.assert_allclose(out[:50, 0], x[:, 0].mean(), rtol=0.02)
    assert np.array_equal(out[~miss], x[~miss])


def test_copula_beats_the_normal_model_on_skewed_columns():
    x = _correlated()
    damaged, miss = _hide(x)
    cop = fit_copula(damaged, np.arange(3))
    out_c = cop.conditional_mean(np.nan_to_num(damaged), miss)
    prior = fit_gaussian(torch.from_numpy(np.nan_to_num(damaged)), torch.from_numpy(~miss))
    out_g = prior.conditional_mean(torch.from_numpy(np.nan_to_num(damaged)), torch.from_numpy(miss))
    out_g = out_g.numpy()
    for j in (1, 2):
        m = miss[:, j]
        err_c = np.sqrt(np.mean((out_c[m, j] - x[m, j]) ** 2))
        err_g = np.sqrt(np.mean((out_g[m, j] - x[m, j]) ** 2))
        assert err_c < 0.9 * err_g, (j, err_c, err_g)


def test_copula_matches_the_normal_model_on_normal_data():
    x = _correlated(n=4000, skew=False)
    damaged, miss = _hide(x)
    cop = fit_copula(damaged, np.arange(3))
    out_c = cop.conditional_mean(np.nan_to_num(damaged), miss)
    prior = fit_gaussian(torch.from_numpy(np.nan_to_num(damaged)), torch.from_numpy(~miss))
    out_g = prior.conditional_mean(torch.from_numpy(np.nan_to_num(damaged)), torch.from_numpy(miss))
    diff = np.abs(out_c - out_g.numpy())[miss]
    spread = x.std(0).mean()
    # the copula imputes within the observed range, the normal model beyond it in the far
    # tails: the bulk agrees (measured: median 0.010, the largest at the tails 0.6)
    assert np.median(diff) < 0.03 * spread, np.median(diff)
    assert np.quantile(diff, 0.99) < 0.25 * spread, np.quantile(diff, 0.99)


def test_rows_are_imputed_alone():
    x = _correlated(400)
    damaged, miss = _hide(x)
    cop = fit_copula(damaged, np.arange(3))
    filled = np.nan_to_num(damaged)
    whole = cop.conditional_mean(filled, miss)
    parts = np.vstack(
        [cop.conditional_mean(filled[s], miss[s]) for s in (slice(0, 137), slice(137, None))]
    )
    assert np.array_equal(whole, parts)


def test_only_mapped_features_move():
    x = _correlated(300)
    damaged, miss = _hide(x)
    cop = fit_copula(damaged, np.array([0, 2]))
    filled = np.nan_to_num(damaged, nan=-7.0)
    out = cop.conditional_mean(filled, miss)
    assert np.array_equal(out[:, 1], filled[:, 1])
    assert np.isfinite(out).all()


@pytest.fixture(scope="module")
def skewed_fit():
    x = _correlated(500, seed=4)
    damaged, miss = _hide(x, seed=5)
    return x, damaged, miss, ReverseImputer(**FAST).fit(damaged)


def test_fit_takes_the_copula_step_on_skewed_columns(skewed_fit):
    _, damaged, miss, imp = skewed_fit
    w = imp.fitted_copula_weights_
    assert w.shape == (3,) and ((w >= 0) & (w <= 1)).all()
    assert w.any(), w
    out = imp.transform(damaged)
    assert np.array_equal(out[~miss], damaged[~miss])
    assert np.isfinite(out).all()


def test_copula_step_is_kept_by_save_and_load_and_chunking(skewed_fit, tmp_path):
    _, damaged, _, imp = skewed_fit
    out = imp.transform(damaged)
    imp.save(tmp_path / "model")
    loaded = ReverseImputer.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.fitted_copula_weights_, imp.fitted_copula_weights_)
    assert np.array_equal(loaded.transform(damaged), out)
    head = imp.transform_details(damaged[:170]).X
    tail = imp.transform_details(damaged[170:], row_offset=170).X
    assert np.array_equal(np.vstack([head, tail]), out)


def test_no_blend_no_copula_weights():
    x = _correlated(200)
    damaged, _ = _hide(x)
    imp = ReverseImputer(blend="none", **FAST).fit(damaged)
    assert not imp.fitted_copula_weights_.any()


def test_transform_applies_the_copula_step_after_the_gaussian_one(skewed_fit):
    """With the Gaussian step off, the copula's weight at 1 and no tree passes, transform
    returns the fitted copula's conditional mean of every missing entry."""
    import copy

    _, damaged, miss, imp = skewed_fit
    forced = copy.deepcopy(imp)
    blend = forced.state_.blend
    blend.gaussian = np.zeros(3)
    blend.copula_weights = np.ones(3)
    blend.chained_weights = None  # the later steps off
    blend.neighbour_weights = None
    blend.passes = []
    out = forced.set_params(clamp=False).transform(damaged)
    state = forced.state_
    xs = state.scaler.scale(torch.from_numpy(damaged)).numpy().astype(np.float64)
    want = blend.copula.conditional_mean(np.nan_to_num(xs), miss)
    expected = state.scaler.unscale(torch.from_numpy(want)).numpy()
    np.testing.assert_allclose(out[miss], expected[miss], rtol=1e-5, atol=1e-6)
    assert np.array_equal(out[~miss], damaged[~miss])
