"""The Gaussian prior: EM fit, conditional means, the loss term, the clean pass, the imputer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from asserts import TOLERANCES, assert_close

from revml import ReverseImputer
from revml.baselines import GaussianImputer
from revml.model import MLPAutoencoder
from revml.prior import GaussianPrior, fit_gaussian
from revml.reference import (
    ReverseConfig,
    clean_pass,
    reverse_grad,
    reverse_impute,
    reverse_loss,
)

F64 = TOLERANCES[torch.float64]
FAST = {"epochs": 15, "n_steps": 25, "random_state": 0, "backend": "reference"}


def _random_prior(d: int, seed: int) -> GaussianPrior:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return GaussianPrior(
        torch.randn(d, generator=gen, dtype=torch.float64),
        a @ a.T + d * 0.1 * torch.eye(d, dtype=torch.float64),
    )


def _rows(n: int, d: int, seed: int, rate: float = 0.4):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    miss = torch.rand(n, d, generator=gen) < rate
    miss[0] = False  # a complete row
    miss[1] = True  # a row with nothing observed
    return x, miss


def _conditional_mean_by_covariance(prior: GaussianPrior, x, miss):
    """``mu_m + S_mo S_oo^-1 (x_o - mu_o)`` row by row, from the covariance."""
    cov = torch.linalg.inv(prior.precision)
    out = x.clone()
    for i in range(x.shape[0]):
        m, o = miss[i], ~miss[i]
        if not m.any():
            continue
        shift = torch.zeros(int(m.sum()), dtype=x.dtype)
        if o.any():
            shift = cov[m][:, o] @ torch.linalg.solve(cov[o][:, o], x[i, o] - prior.mean[o])
        out[i, m] = prior.mean[m] + shift
    return out


def test_conditional_mean_matches_the_covariance_formula():
    prior = _random_prior(7, 0)
    x, miss = _rows(40, 7, 1)
    got = prior.conditional_mean(x, miss)
    assert_close(got, _conditional_mean_by_covariance(prior, x, miss), **F64, name="E[x_m|x_o]")
    assert torch.equal(got[~miss], x[~miss])  # observed entries pass unchanged


@pytest.mark.parametrize("weight,evidence", [(0.5, 1.0), (3.0, 0.2), (1e-3, 1.0)])
def test_combine_minimises_evidence_plus_prior(weight, evidence):
    prior = _random_prior(6, 2)
    x, miss = _rows(30, 6, 3)
    c = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got = prior.combine(c, x, miss, weight, evidence)
    assert torch.equal(got[~miss], x[~miss])
    # The gradient of the objective w.r.t. the missing entries vanishes there.
    leaf = got.clone().requires_grad_(True)
    objective = evidence * ((leaf - c) ** 2 * miss).sum() + weight * prior.energy(leaf).sum()
    (grad,) = torch.autograd.grad(objective, leaf)
    # Zero up to float64 rounding of its two terms (each up to ~1e2 here): 1e-10 of them.
    scale = float((weight * prior.grad(got)).abs().max() + (2 * evidence * (got - c)).abs().max())
    assert_close(grad[miss], torch.zeros_like(grad[miss]), rtol=0, atol=1e-10 * scale, name="grad")


def test_combine_rejects_zero_weights():
    prior = _random_prior(3, 0)
    x, miss = _rows(4, 3, 0)
    with pytest.raises(ValueError, match="not both 0"):
        prior.combine(x, x, miss, 0.0, 0.0)


def test_fit_gaussian_recovers_the_complete_data_moments():
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    z = torch.randn(4000, 5, generator=gen, dtype=torch.float64) @ a.T + torch.arange(5.0)
    hidden = torch.rand(z.shape, generator=gen) < 0.25
    prior = fit_gaussian(torch.where(hidden, torch.nan, z), ~hidden)
    cov = torch.linalg.inv(prior.precision)
    assert_close(prior.mean, z.mean(0), rtol=0, atol=0.06, name="mean")
    full = torch.cov(z.T, correction=0)
    assert_close(cov, full, rtol=0.05, atol=0.05 * float(full.diagonal().mean()), name="cov")
    # Mean filling (no EM) underestimates every variance by about the hidden share.
    assert (cov.diagonal() > 0.9 * full.diagonal()).all()


def test_fit_gaussian_of_complete_data_is_the_sample_covariance_plus_ridge():
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    prior = fit_gaussian(z, torch.ones_like(z, dtype=torch.bool))
    full = torch.cov(z.T, correction=0)
    ridge = 1e-3 * full.diagonal().mean()
    assert_close(torch.linalg.inv(prior.precision), full + ridge * torch.eye(4), **F64, name="cov")


def test_fit_gaussian_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="observed mask of the same shape"):
        fit_gaussian(torch.zeros(5, 3), torch.ones(5, 2, dtype=torch.bool))


def _ae(d: int = 6) -> MLPAutoencoder:
    torch.manual_seed(0)
    return MLPAutoencoder(d, hidden=(8,), bottleneck=3).double().requires_grad_(False)


def test_loss_and_gradient_gain_the_prior_term():
    ae, prior = _ae(), _random_prior(6, 7)
    x, miss = _rows(9, 6, 8)
    rows = torch.arange(9)
    base = ReverseConfig(dropout=0.3, dropout_rescale=False, missing_weight=0.3, seed=2)
    cfg = ReverseConfig(**{**base.__dict__, "prior_weight": 0.7, "prior": prior})
    loss = reverse_loss(ae, x, miss, None, cfg)
    plain = reverse_loss(ae, x, miss, None, base)
    assert_close(loss - plain, 0.7 * prior.energy(x) / 6, **F64, name="loss term")
    grad, _ = reverse_grad(ae, x, miss, rows, 3, cfg)
    grad0, _ = reverse_grad(ae, x, miss, rows, 3, base)
    assert_close(grad - grad0, 0.7 * prior.grad(x) / 6, **F64, name="gradient term")
    # A zero weight, or no prior, is the plain loss.
    off = ReverseConfig(**{**cfg.__dict__, "prior_weight": 0.0})
    assert torch.equal(reverse_loss(ae, x, miss, None, off), plain)


def test_a_strong_prior_drives_the_loop_to_the_conditional_mean():
    ae, prior = _ae(), _random_prior(6, 9)
    x, miss = _rows(12, 6, 10)
    want = prior.conditional_mean(x, miss)
    start = torch.where(miss, 0.0, x)
    cfg = ReverseConfig(n_steps=600, lr=0.02, prior_weight=1e4, prior=prior, sphere_weight=0)
    got, _ = reverse_impute(ae, start, miss, torch.arange(12), cfg)
    before = (start - want)[miss].abs().max()
    after = (got - want)[miss].abs().max()
    assert after < 0.02 * before, (float(before), float(after))
    # The clean pass with that prior lands on it to solver precision.
    cleaned = clean_pass(ae, got, miss, cfg)
    assert_close(cleaned, want, rtol=0, atol=1e-3, name="clean pass")


def test_clean_pass_combines_the_output_with_the_prior():
    ae, prior = _ae(), _random_prior(6, 11)
    x, miss = _rows(10, 6, 12)
    cfg = ReverseConfig(prior_weight=0.4, prior=prior)
    plain = clean_pass(ae, x, miss)
    got = clean_pass(ae, x, miss, cfg)
    assert_close(got, prior.combine(plain, x, miss, 0.4), **F64, name="clean pass")
    assert torch.equal(got[~miss], x[~miss])


def _table(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x = np.column_stack([z, z @ [1.0, -0.5, 0.2], z[:, 0] - z[:, 2], np.tanh(z[:, 1])])
    x = x * [1, 10, 100, 2, 3, 1] + [0, 5, -50, 1, 0, 2]
    holes = rng.random(x.shape) < 0.15
    return x, holes


def test_auto_prior_weight_is_on_for_tables_and_off_for_images():
    x, holes = _table()
    damaged = np.where(holes, np.nan, x)
    tables = ReverseImputer(**FAST).fit(damaged)
    assert tables.prior_weight_ == 0.03 and tables.prior_ is not None
    assert tables.reverse_config().prior is not None
    images = ReverseImputer(image_shape=(2, 3), **FAST).fit(damaged)
    assert images.prior_weight_ == 0.0 and images.prior_ is None
    plain = ReverseImputer(masking="none", **FAST).fit(damaged)
    assert plain.prior_weight_ == 0.0
    forced = ReverseImputer(masking="none", prior_weight=0.2, **FAST).fit(damaged)
    assert forced.prior_weight_ == 0.2 and forced.prior_ is not None


def test_the_prior_improves_a_near_linear_table_and_keeps_observed_values():
    x, holes = _table(300, 1)
    damaged = np.where(holes, np.nan, x)
    span = x.max(0) - x.min(0)

    def rmse(imp):
        out = imp.fit_transform(damaged)
        assert np.array_equal(out[~holes], x[~holes])
        return np.sqrt(np.mean((((out - x) / span)[holes]) ** 2))

    # the loop's own imputation: the blend's copula step would model the same linear
    # relations without the prior
    with_prior = rmse(ReverseImputer(n_restarts=1, blend="none", **FAST))
    without = rmse(ReverseImputer(n_restarts=1, prior_weight=0.0, blend="none", **FAST))
    assert with_prior < 0.8 * without, (with_prior, without)


def test_prior_weight_is_validated_and_needs_a_fitted_prior():
    x, holes = _table(60)
    damaged = np.where(holes, np.nan, x)
    for bad in (-0.1, float("nan"), "strong", True):
        with pytest.raises(ValueError, match="prior_weight"):
            ReverseImputer(prior_weight=bad, **FAST).fit(damaged)
    imp = ReverseImputer(prior_weight=0.0, **FAST).fit(damaged)
    imp.set_params(prior_weight=0.5)
    with pytest.raises(ValueError, match="fitted without a prior"):
        imp.transform(damaged)
    assert np.isnan(damaged).any()  # the input is untouched


def test_batch_size_does_not_change_results_with_the_prior():
    x, holes = _table(90, 2)
    damaged = np.where(holes, np.nan, x)
    imp = ReverseImputer(n_restarts=2, **FAST).fit(damaged)
    a = imp.set_params(batch_size=7).transform(damaged)
    b = copy.copy(imp).set_params(batch_size=90).transform(damaged)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(x).max())


def test_save_and_load_keep_the_prior(tmp_path):
    x, holes = _table(80, 3)
    damaged = np.where(holes, np.nan, x)
    imp = ReverseImputer(n_restarts=1, **FAST).fit(damaged)
    imp.save(tmp_path / "m")
    loaded = ReverseImputer.load(tmp_path / "m")
    assert loaded.prior_weight_ == imp.prior_weight_
    assert torch.equal(loaded.prior_.precision, imp.prior_.precision)
    np.testing.assert_array_equal(loaded.transform(damaged), imp.transform(damaged))


def test_gaussian_imputer_is_the_conditional_mean():
    x, holes = _table(400, 4)
    damaged = np.where(holes, np.nan, x)
    imp = GaussianImputer(random_state=0).fit(damaged)
    out = imp.transform(damaged)
    assert np.array_equal(out[~holes], x[~holes])
    # Column 4 is an exact linear function of columns 0 and 2 (3 (z0 - z2) in the units of
    # _table): recovered wherever both are observed.
    ok = holes[:, 4] & ~holes[:, 0] & ~holes[:, 2]
    exact = 3 * x[ok, 0] - 3 * (x[ok, 2] + 50) / 100
    np.testing.assert_allclose(out[ok, 4], exact, atol=0.01 * np.ptp(x[:, 4]))


def test_a_feature_never_observed_is_independent_with_unit_variance():
    z = torch.randn(200, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    observed = torch.rand(z.shape, generator=torch.Generator().manual_seed(8)) > 0.2
    observed[:, 1] = False
    prior = fit_gaussian(torch.where(observed, z, 0.0), observed)
    cov = torch.linalg.inv(prior.precision)
    assert float(prior.mean[1]) == 0.0
    assert_close(cov[1], torch.eye(3, dtype=torch.float64)[1] * cov[1, 1], **F64, name="row")
    assert 1.0 <= float(cov[1, 1]) < 1.01


def test_a_rows_solve_is_its_own_whichever_rows_share_the_call():
    """Chunking must not move a value beyond a rounding: the prior's solves, EM's inverses
    included, give each row the same bits alone, in any chunk and among rows with other
    numbers of missing entries (on an ill-conditioned precision, where a rounding shows).
    The right-hand side ``P_mo z_o`` is one matrix product over the chunk's rows, and a
    BLAS rounds a product by its row count (MKL on AVX-512: rows not a multiple of 4 move
    the last bit), so the conditional mean agrees to float64 rounding: 6e-15 relative
    measured, checked at 1e-12."""
    from revml.prior import _missing_blocks, _solve_missing_blocks

    d = 12
    rng = np.random.default_rng(8)
    basis = rng.normal(size=(d, 3))
    cov = basis @ basis.T + 1e-4 * np.eye(d)  # near rank 3: condition ~ 1e5
    prec = torch.from_numpy(np.linalg.inv(cov))
    prior = GaussianPrior(torch.zeros(d, dtype=torch.float64), prec)
    x, miss = _rows(64, d, seed=9, rate=0.5)
    whole = prior.conditional_mean(x, miss)
    mixed = prior.combine(x, x, miss, weight=0.03, evidence=1.0)
    order = torch.from_numpy(rng.permutation(64))
    for chunk in (1, 5, 17):
        parts = [order[i : i + chunk] for i in range(0, 64, chunk)]
        for rows in parts:
            got = prior.conditional_mean(x[rows], miss[rows])
            assert_close(got, whole[rows], rtol=1e-12, atol=1e-12, name="conditional mean")
            got = prior.combine(x[rows], x[rows], miss[rows], 0.03, 1.0)
            assert_close(got, mixed[rows], rtol=1e-12, atol=1e-12, name="combine")
    y, total = _solve_missing_blocks(prec, 0.5, x, miss, inverse=True)
    summed = torch.zeros_like(total)
    for r in range(64):
        one, inv = _solve_missing_blocks(prec, 0.5, x[r : r + 1], miss[r : r + 1], inverse=True)
        assert torch.equal(one, y[r : r + 1])
        m = miss[r]
        eye = torch.eye(int(m.sum()), dtype=prec.dtype)
        assert_close(inv[m][:, m], torch.linalg.inv(prec[m][:, m] + 0.5 * eye), **F64)
        summed += inv
    assert_close(total, summed, **F64)
    # EM plans the blocks once for its fixed mask; the planned solve is the same solve
    planned, planned_total = _solve_missing_blocks(
        prec, 0.5, x, miss, inverse=True, plan=_missing_blocks(miss)
    )
    assert torch.equal(planned, y) and torch.equal(planned_total, total)
