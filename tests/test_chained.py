"""The chained-regressions step of the tree blend (revml.chained, revml.blending)."""

from __future__ import annotations

import blend_steps as steps
import numpy as np
import pytest

from revml import ReverseImputer
from revml.chained import MAX_ITER, TOL, fit_chained

FAST = {"epochs": 30, "n_steps": 20, "random_state": 0}


def _linear(n=400, seed=0):
    """Four columns: two free, a third their linear function, a fourth noise."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    c = 2.0 * a - b + 0.05 * rng.normal(size=n)
    return np.column_stack([a, b, c, rng.normal(size=n)])


_hide = steps.hide


def test_recovers_a_linear_column():
    """Where the other two are observed, the third's imputation is the linear law's value,
    far closer than its mean; the noise column's is close to its mean."""
    x = _linear()
    damaged, miss = _hide(x)
    out = fit_chained(damaged).conditional_mean(np.nan_to_num(damaged), miss)
    rows = miss[:, 2] & ~miss[:, 0] & ~miss[:, 1]
    assert rows.sum() > 20
    err = np.sqrt(np.mean((out[rows, 2] - x[rows, 2]) ** 2))
    spread = np.std(x[:, 2])
    assert err < 0.1 * spread, (err, spread)
    noise = miss[:, 3]
    assert np.abs(out[noise, 3] - np.nanmean(damaged[:, 3])).max() < 0.5


def test_observed_entries_are_kept_and_imputations_clipped():
    x = _linear()
    damaged, miss = _hide(x, rate=0.3)
    filled = np.nan_to_num(damaged, nan=-7.0)
    out = fit_chained(damaged).conditional_mean(filled, miss)
    assert np.array_equal(out[~miss], filled[~miss])
    lo, hi = np.nanmin(damaged, 0), np.nanmax(damaged, 0)
    assert ((out >= lo) & (out <= hi)).all()


def test_rows_are_imputed_alone():
    """A row's imputation depends on its own entries only: split rows give the same bits."""
    x = _linear(300, seed=2)
    damaged, miss = _hide(x, seed=3)
    chained = fit_chained(damaged)
    whole = chained.conditional_mean(damaged, miss)
    parts = np.vstack(
        [
            chained.conditional_mean(damaged[:77], miss[:77]),
            chained.conditional_mean(damaged[77:], miss[77:]),
        ]
    )
    assert np.array_equal(whole, parts)


def _sklearn(damaged):
    """The oracle: scikit-learn's IterativeImputer as revml.chained documents it."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    from sklearn.linear_model import BayesianRidge

    lo, hi = np.nanmin(damaged, 0), np.nanmax(damaged, 0)
    varies = hi > lo
    return IterativeImputer(
        estimator=BayesianRidge(),
        max_iter=MAX_ITER,
        tol=TOL,
        min_value=np.where(varies, lo, -np.inf),
        max_value=np.where(varies, hi, np.inf),
        keep_empty_features=True,
    ).fit(damaged)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
@pytest.mark.parametrize(
    "n, d, rate, seed", [(300, 4, 0.2, 0), (123, 7, 0.35, 1), (6, 9, 0.2, 2), (431, 3, 0.5, 3)]
)
def test_matches_scikit_learns_iterative_imputer(n, d, rate, seed):
    """Fitted on one table and applied to another, the regressions are scikit-learn's
    (``IterativeImputer(BayesianRidge())``, clipped to the observed ranges) to 1e-9: more
    rows than features and fewer, a constant column, an all-missing one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, d)) @ rng.normal(size=(d, d))
    x[:, 1] = np.round(x[:, 1])  # repeated values
    x[:, 2] = 3.0  # constant: left unbounded
    damaged, _ = _hide(x, rate=rate, seed=seed + 10)
    damaged[:n, -1] = np.nan  # empty in the training half: kept at 0
    train, test = damaged[:n], damaged[n:]
    want = _sklearn(train)
    ours = fit_chained(train)
    np.testing.assert_allclose(
        ours.conditional_mean(np.nan_to_num(train), np.isnan(train)),
        want.transform(train),
        rtol=1e-9,
        atol=1e-9,
    )
    got = ours.conditional_mean(np.nan_to_num(test), np.isnan(test))
    np.testing.assert_allclose(got, want.transform(test), rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def linear_fit():
    x = _linear(500, seed=6)
    damaged, miss = _hide(x, seed=7)
    return x, damaged, miss, ReverseImputer(**FAST).fit(damaged)


def test_the_bar_decides_the_step(monkeypatch):
    x = _linear(300, seed=8)
    damaged, _ = _hide(x, seed=9)
    steps.check_the_bar_decides_the_step(
        monkeypatch, damaged, FAST, "MIN_CHAINED_GAIN", "chained_weights", "chained"
    )


def _forced(imp):
    """``imp`` with only the chained step: every weight 1, no other step, no trees."""
    return steps.only_step(
        imp, "chained_weights", "chained", lambda blend: fit_chained(blend.data.astype(np.float64))
    )


def test_transform_applies_the_chained_step(linear_fit):
    _, damaged, miss, imp = linear_fit
    steps.check_transform_applies_the_step(_forced(imp), damaged, miss, "chained")


def test_chained_step_is_kept_by_save_and_load_and_chunking(linear_fit, tmp_path):
    _, damaged, _, imp = linear_fit
    steps.check_kept_by_save_and_load_and_chunking(
        _forced(imp), damaged, "chained_weights", tmp_path, exact_chunks=True
    )


def test_no_blend_no_chained_weights():
    x = _linear(200)
    damaged, _ = _hide(x)
    imp = ReverseImputer(blend="none", **FAST).fit(damaged)
    assert not imp.fitted_chained_weights_.any()
