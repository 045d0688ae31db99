"""Baselines under one API, the new missingness mechanisms and the comparison table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import KNNImputer

from revml import ReverseImputer, masks
from revml.baselines import (
    METHODS,
    AgglomerativeImputer,
    IterativeRegressionImputer,
    NearestNeighborsImputer,
    StatisticImputer,
    make_imputer,
)
from revml.evaluate import compare, format_comparison, per_column, summary

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

AE = {"hidden": (8,), "bottleneck": 2, "epochs": 3, "n_steps": 5, "backend": "reference"}


def linear_table(n=80, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    X = np.c_[z, z @ np.array([[1.0, 2.0], [-1.0, 0.5]]) + 0.05 * rng.normal(size=(n, 2))]
    X[:, 1] *= 1000.0  # one column in very different units
    miss = masks.mcar(X.shape, 0.2, seed=seed + 1)
    return X, miss, masks.apply(X, miss)


BASELINES = {
    "mean": StatisticImputer,
    "median": lambda: StatisticImputer(strategy="median"),
    "most_frequent": lambda: StatisticImputer(strategy="most_frequent"),
    "iterative": lambda: IterativeRegressionImputer(random_state=0),
    "knn": NearestNeighborsImputer,
    "agglomerative": lambda: AgglomerativeImputer(n_clusters=4),
}


@pytest.mark.parametrize("name", list(BASELINES))
def test_arrays_observed_kept_input_untouched(name):
    _, miss, x_nan = linear_table()
    before = x_nan.copy()
    out = BASELINES[name]().fit_transform(x_nan)
    np.testing.assert_array_equal(x_nan, before)
    assert out.dtype == x_nan.dtype and np.isfinite(out).all()
    np.testing.assert_array_equal(out[~miss], x_nan[~miss])
    out32 = BASELINES[name]().fit_transform(x_nan.astype(np.float32))
    assert out32.dtype == np.float32


def test_statistics_match_numpy():
    _, miss, x_nan = linear_table()
    cols = np.nonzero(miss)[1]
    out = StatisticImputer().fit_transform(x_nan)
    np.testing.assert_allclose(out[miss], np.nanmean(x_nan, 0)[cols], rtol=1e-12)
    out = StatisticImputer(strategy="median").fit_transform(x_nan)
    np.testing.assert_allclose(out[miss], np.nanmedian(x_nan, 0)[cols], rtol=1e-12)
    x = np.array([[1.0, 7.0], [1.0, np.nan], [2.0, 7.0], [np.nan, 3.0]])
    assert StatisticImputer(strategy="most_frequent").fit_transform(x)[3, 0] == 1.0


def test_categories_get_the_mode():
    df = pd.DataFrame({"c": ["a", "b", "b", None, "b"], "x": [1.0, 2.0, 3.0, 4.0, np.nan]})
    for strategy in ("mean", "median", "most_frequent"):
        out = StatisticImputer(strategy=strategy).fit_transform(df)
        assert out.loc[3, "c"] == "b", strategy


def test_knn_is_sklearns_on_min_max_scaled_columns():
    _, _, x_nan = linear_table()
    lo, hi = np.nanmin(x_nan, 0), np.nanmax(x_nan, 0)
    expected = KNNImputer(n_neighbors=3).fit_transform((x_nan - lo) / (hi - lo)) * (hi - lo) + lo
    got = NearestNeighborsImputer(n_neighbors=3).fit_transform(x_nan)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


def test_iterative_regression_recovers_linear_structure():
    x, miss, x_nan = linear_table(n=150)
    span = x.max(0) - x.min(0)

    def err(pred):
        return np.sqrt(np.mean(((pred - x) / span)[miss] ** 2))

    it = err(IterativeRegressionImputer(random_state=0).fit_transform(x_nan))
    assert it < 0.3 * err(StatisticImputer().fit_transform(x_nan))
    ols = IterativeRegressionImputer(estimator="linear", random_state=0).fit(x_nan)
    assert ols.n_iter_ >= 1


def test_agglomerative_fills_from_the_nearest_cluster():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 0.1, size=(20, 3))
    b = rng.normal(10.0, 0.1, size=(20, 3))
    X = np.r_[a, b]
    X[[0, 25], 2] = np.nan
    imp = AgglomerativeImputer(n_clusters=2).fit(X)
    out = imp.transform(X)
    assert out[0, 2] == pytest.approx(np.nanmean(X[:20, 2]))
    assert out[25, 2] == pytest.approx(np.nanmean(X[20:, 2]))
    new = np.array([[9.9, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    filled = imp.transform(new)
    assert filled[0, 1] == pytest.approx(X[20:, 1].mean())
    np.testing.assert_allclose(filled[1], np.nanmean(X, 0))  # no observed value: overall
    big = AgglomerativeImputer(n_clusters=2, max_samples=10, random_state=0).fit(X)
    assert len(big.labels_) == 10 and np.isfinite(big.transform(X)).all()


@pytest.mark.parametrize(
    ("imputer", "match"),
    [
        (StatisticImputer(strategy="mode"), "strategy"),
        (IterativeRegressionImputer(estimator="lasso"), "estimator"),
        (IterativeRegressionImputer(max_iter=0), "max_iter"),
        (NearestNeighborsImputer(n_neighbors=0), "n_neighbors"),
        (NearestNeighborsImputer(weights="cosine"), "weights"),
        (AgglomerativeImputer(n_clusters=0), "n_clusters"),
        (AgglomerativeImputer(linkage="centroid"), "linkage"),
    ],
)
def test_bad_parameters_are_named(imputer, match):
    with pytest.raises(ValueError, match=match):
        imputer.fit(np.ones((4, 2)))


def test_make_imputer_covers_every_method():
    made = {name: make_imputer(name, random_state=3, epochs=4) for name in METHODS}
    assert made["direct_ae"].strategy == "direct" and made["direct_ae"].epochs == 4
    assert isinstance(made["reverse"], ReverseImputer) and made["reverse"].random_state == 3
    assert made["median"].strategy == "median"
    assert made["agglomerative"].random_state == 3
    with pytest.raises(ValueError, match="unknown method 'mice'"):
        make_imputer("mice")


def test_mar_and_mnar_masks():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 4))
    m = masks.mar(X, 0.2, seed=0)
    driver = int(np.argmax((~np.isnan(X)).sum(0)))
    assert not m[:, driver].any()
    assert m.mean() == pytest.approx(0.2, abs=0.01)
    high = X[:, driver] > np.median(X[:, driver])
    assert m[high].mean() > 2 * m[~high].mean()  # depends on the observed driver
    m = masks.mnar(X, 0.2, seed=0)
    assert m.mean() == pytest.approx(0.2, abs=0.01)
    assert m[X > 0].mean() > 2 * m[X <= 0].mean()  # depends on the hidden value itself
    X[:, 3] = np.nan
    assert masks.mnar(X, 0.2, seed=0)[:, 3].mean() == pytest.approx(0.2, abs=0.03)
    with pytest.raises(ValueError, match="at least 2 columns"):
        masks.mar(X[:, :1], 0.2)
    with pytest.raises(ValueError, match="rate"):
        masks.mnar(X, 1.5)


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(0)
    n = 90
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "a": z + 0.1 * rng.normal(size=n),
            "b": pd.array(np.round(3 * z).astype(int), dtype="Int64"),
            "c": np.where(z > 0, "hi", "lo").astype(object),
            "d": z + 0.1 * rng.normal(size=n) > 0.5,
        }
    )
    df.loc[::11, "a"] = np.nan
    return df


def test_compare_every_method_on_a_mixed_table(mixed):
    table = compare(mixed, fraction=0.25, seed=0, ae_params=AE)
    assert list(dict.fromkeys(table["method"])) == list(METHODS)
    total = summary(table)
    assert list(total.index) == list(METHODS)
    observed = mixed.notna().to_numpy()
    n_hidden = table.loc[table["column"] == "(all)", "n_hidden"]
    assert (n_hidden == n_hidden.iloc[0]).all()
    assert 0.15 * observed.sum() < n_hidden.iloc[0] < 0.35 * observed.sum()
    numeric = table[table["column"].isin(["a", "b"])]
    categorical = table[table["column"].isin(["c", "d"])]
    assert numeric["rmse"].notna().all() and numeric["accuracy"].isna().all()
    assert categorical["accuracy"].between(0, 1).all() and categorical["rmse"].isna().all()
    assert (table["n_unfilled"] == 0).all()
    # The structure is one latent variable: a model beats filling in the mean.
    assert total.loc["iterative", "rmse"] < total.loc["mean", "rmse"]
    assert total.loc["knn", "accuracy"] > total.loc["mean", "accuracy"]
    assert per_column(table, "rmse").shape == (2, len(METHODS))
    text = format_comparison(table)
    assert "Accuracy per categorical/boolean column" in text and "agglomerative" in text


def test_compare_with_a_given_mask_and_own_estimators(mixed):
    mask = np.zeros(mixed.shape, dtype=bool)
    mask[[1, 4, 7, 10, 13], 0] = True
    mask[2:40:4, 2] = True
    table = compare(mixed, {"mine": StatisticImputer(strategy="median")}, mask=mask)
    assert table.set_index("column").loc["(all)", "n_hidden"] == mask.sum()
    assert set(table["column"]) == {"a", "c", "(all)"}
    bad = mask.copy()
    bad[0, 0] = True  # already missing in the data
    with pytest.raises(ValueError, match="already missing"):
        compare(mixed, ["mean"], mask=bad)
    with pytest.raises(ValueError, match="mechanism"):
        compare(mixed, ["mean"], mechanism="random")
    with pytest.raises(ValueError, match="fraction"):
        compare(mixed, ["mean"], fraction=0.0)


@pytest.mark.parametrize(("mechanism", "n_columns"), [("mar", 3), ("mnar", 4)])
def test_compare_mechanisms_on_arrays(mechanism, n_columns):
    X = linear_table()[0]
    table = compare(X, ["mean", "knn"], mechanism=mechanism, fraction=0.2, seed=1)
    scored = set(table["column"]) - {"(all)"}
    assert len(scored) == n_columns  # MAR never hides its driver column
    assert scored <= {"x0", "x1", "x2", "x3"} and table["rmse"].notna().all()
