"""scikit-learn compliance: the estimator checks, pipelines, feature names, set_output."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.estimator_checks import parametrize_with_checks

from revml import ReverseImputer
from revml.baselines import (
    AgglomerativeImputer,
    IterativeRegressionImputer,
    NearestNeighborsImputer,
    StatisticImputer,
)

#: The smallest configuration that still exercises training and the reverse loop.
TINY = {
    "hidden": (4,),
    "bottleneck": 1,
    "epochs": 2,
    "n_steps": 3,
    "random_state": 0,
    "backend": "reference",
    "device": "cpu",
}

ESTIMATORS = [
    ReverseImputer(**TINY),
    ReverseImputer(strategy="direct", **TINY),
    ReverseImputer(n_restarts=2, combine="lowest_loss", **TINY),
    StatisticImputer(),
    StatisticImputer(strategy="median"),
    StatisticImputer(strategy="most_frequent"),
    IterativeRegressionImputer(max_iter=3, random_state=0),
    NearestNeighborsImputer(),
    AgglomerativeImputer(n_clusters=3, random_state=0),
]


# Every check passes, so none is marked as an expected failure.
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "a": z + 0.1 * rng.normal(size=n),
            "b": 2 * z + 0.1 * rng.normal(size=n),
            "c": np.where(z > 0, "hi", "lo"),
        },
        index=pd.Index(np.arange(100, 100 + n), name="id"),
    )
    df.loc[df.index[::7], "a"] = np.nan
    df.loc[df.index[3::9], "c"] = None
    return df, z


@pytest.fixture(scope="module")
def fitted_on_frame():
    df, _ = _table()
    return ReverseImputer(**TINY).fit(df[["a", "b"]]), df


def test_pipeline_with_a_regressor():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    X[rng.random(X.shape) < 0.15] = np.nan
    pipe = make_pipeline(ReverseImputer(**TINY), LinearRegression()).fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (50,) and np.isfinite(pred).all()


@pytest.mark.parametrize(
    "imputer", [ReverseImputer(**TINY), NearestNeighborsImputer()], ids=["reverse", "knn"]
)
def test_column_transformer_with_pandas_output(imputer):
    df, _ = _table()
    ct = ColumnTransformer(
        [
            ("num", imputer, ["a", "b"]),
            (
                "cat",
                make_pipeline(
                    StatisticImputer(strategy="most_frequent"),
                    OneHotEncoder(sparse_output=False),
                ),
                ["c"],
            ),
        ]
    ).set_output(transform="pandas")
    out = ct.fit_transform(df)
    assert list(out.columns) == ["num__a", "num__b", "cat__c_hi", "cat__c_lo"]
    assert out.index.equals(df.index)
    assert not out.isna().any().any()
    np.testing.assert_array_equal(out["num__b"].to_numpy(), df["b"].to_numpy())


def test_set_output_pandas_on_arrays_and_frames(fitted_on_frame):
    _, df = fitted_on_frame
    X = df[["a", "b"]].to_numpy()
    imp = ReverseImputer(**TINY).set_output(transform="pandas")
    out = imp.fit_transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["x0", "x1"]
    assert not out.isna().any().any()
    out = imp.fit(df[["a", "b"]]).transform(df[["a", "b"]])
    assert list(out.columns) == ["a", "b"] and out.index.equals(df.index)
    imp.set_output(transform="default").fit(X)
    assert imp.transform(X[:3]).__class__ is np.ndarray


@pytest.mark.parametrize("make", [lambda: ReverseImputer(**TINY), StatisticImputer])
def test_get_feature_names_out(make):
    df, _ = _table()
    imp = make().fit(df[["a", "b"]])
    assert imp.get_feature_names_out().tolist() == ["a", "b"]
    assert imp.feature_names_in_.tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="input_features"):
        imp.get_feature_names_out(["a", "z"])
    imp = make().fit(df[["a", "b"]].to_numpy())
    assert imp.get_feature_names_out().tolist() == ["x0", "x1"]
    assert not hasattr(imp, "feature_names_in_")


def test_feature_name_mismatches_are_caught(fitted_on_frame):
    imp, df = fitted_on_frame
    with pytest.warns(UserWarning, match="valid feature names"):
        out = imp.transform(df[["a", "b"]].to_numpy())
    assert isinstance(out, np.ndarray) and not np.isnan(out).any()
    with pytest.raises(ValueError, match="feature names"):
        imp.transform(df[["a", "b"]].rename(columns={"b": "B"}))
    with pytest.raises(ValueError, match="should match"):
        imp.transform(df[["a"]])
    with pytest.raises(ValueError, match="expecting 2 features"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the array also has no feature names
        imp.transform(df[["a"]].to_numpy())


def test_frame_to_an_array_fitted_imputer_comes_back_as_frame(fitted_on_frame):
    _, df = fitted_on_frame
    imp = ReverseImputer(**TINY).fit(df[["a", "b"]].to_numpy())
    with pytest.warns(UserWarning, match="fitted without feature names"):
        out = imp.transform(df[["a", "b"]])
    assert isinstance(out, pd.DataFrame) and out.index.equals(df.index)
    assert not out.isna().any().any()


@pytest.mark.parametrize(
    "make",
    [
        lambda mv: ReverseImputer(missing_values=mv, **TINY),
        lambda mv: StatisticImputer(missing_values=mv),
        lambda mv: NearestNeighborsImputer(missing_values=mv),
    ],
    ids=["reverse", "mean", "knn"],
)
def test_missing_values_placeholder(make):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    X_marked = X.copy()
    X_marked[::5, 1] = -1.0
    out = make(-1.0).fit_transform(X_marked)
    hit = X_marked == -1.0
    assert not (out[hit] == -1.0).any()
    np.testing.assert_array_equal(out[~hit], X_marked[~hit])
    assert make(-1.0).get_params()["missing_values"] == -1.0
    assert clone(make(-1.0)).missing_values == -1.0


def test_string_placeholder_in_a_frame():
    df, _ = _table()
    df = df.copy()
    df["c"] = df["c"].fillna("?")
    out = ReverseImputer(missing_values="?", **TINY).fit_transform(df)
    assert set(out["c"]) == {"hi", "lo"}
    np.testing.assert_array_equal(out["b"].to_numpy(), df["b"].to_numpy())


def test_one_feature_falls_back_to_the_mean_with_a_warning():
    X = np.array([[1.0], [np.nan], [3.0], [5.0]])
    with pytest.warns(UserWarning, match="1 feature"):
        imp = ReverseImputer(**TINY).fit(X)
    assert imp.autoencoder_ is None
    out = imp.transform(X)
    assert out[1, 0] == pytest.approx(3.0)
    np.testing.assert_array_equal(out[[0, 2, 3]], X[[0, 2, 3]])
    with pytest.raises(ValueError, match="single feature"):
        imp.direct_output(X)


def test_sparse_and_complex_input_errors():
    import scipy.sparse as sp

    X = sp.random(10, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match="sparse"):
        ReverseImputer(**TINY).fit(X)
    with pytest.raises(ValueError, match="Complex data not supported"):
        ReverseImputer(**TINY).fit(np.ones((4, 3)) * 1j)
