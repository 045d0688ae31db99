"""DataFrames in, DataFrames out: dtypes, categories, index and the documented edge cases."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from revml import ReverseImputer
from revml.baselines import (
    AgglomerativeImputer,
    IterativeRegressionImputer,
    NearestNeighborsImputer,
    StatisticImputer,
)
from revml.tabular import TabularEncoder

TINY = {
    "hidden": (8,),
    "bottleneck": 2,
    "epochs": 3,
    "n_steps": 5,
    "random_state": 0,
    "backend": "reference",
    "device": "cpu",
}

MAKERS = {
    "reverse": lambda: ReverseImputer(**TINY),
    "direct_ae": lambda: ReverseImputer(strategy="direct", **TINY),
    "mean": StatisticImputer,
    "iterative": lambda: IterativeRegressionImputer(max_iter=3, random_state=0),
    "knn": NearestNeighborsImputer,
    "agglomerative": lambda: AgglomerativeImputer(n_clusters=3),
}


def mixed_frame(n: int = 48, seed: int = 0) -> pd.DataFrame:
    """Every supported column kind, with missing cells, a shuffled non-range index and an
    order that is not alphabetical."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "zf": 10 + 3 * z,
            "count": pd.array(np.clip(np.round(5 + 2 * z), 0, None).astype(int), dtype="Int64"),
            "flag": pd.array(z > 0, dtype="boolean"),
            "obj_flag": np.array(list(z > 0.5), dtype=object),
            "colour": pd.Categorical(
                np.where(z > 0.3, "red", np.where(z < -0.3, "blue", "green")),
                categories=["blue", "green", "red", "unused"],
            ),
            "city": pd.array(np.where(z > 0, "Oslo", "Rome"), dtype="str"),
            "code": np.where(z > 0, "A", "B").astype(object),
            "f32": (z * 2).astype(np.float32),
        },
        index=pd.Index(rng.permutation(np.arange(1000, 1000 + n)), name="rid"),
    )
    holes = rng.random(df.shape) < 0.15
    holes[0] = False  # one complete row
    for j, name in enumerate(df.columns):
        df.loc[holes[:, j], name] = None
    return df


@pytest.fixture(scope="module")
def frame():
    return mixed_frame()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(MAKERS))
def test_frame_round_trip(frame, name):
    before = frame.copy(deep=True)
    out = MAKERS[name]().fit_transform(frame)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(frame.index) and list(out.columns) == list(frame.columns)
    assert not out.isna().any().any()
    expected = dict(frame.dtypes)
    expected["obj_flag"] = np.dtype(bool)  # object only because it held None
    assert dict(out.dtypes) == expected
    miss = frame.isna().to_numpy()
    for j, col in enumerate(frame.columns):
        observed = ~miss[:, j]
        kept = out[col][observed].astype(object).tolist()
        assert kept == frame[col][observed].astype(object).tolist(), col
    np.testing.assert_array_equal(  # floats bit-identical where observed
        out["zf"].to_numpy()[~miss[:, 0]], frame["zf"].to_numpy()[~miss[:, 0]]
    )
    assert set(out["colour"]) <= {"blue", "green", "red"}  # observed categories only
    assert set(out["city"]) <= {"Oslo", "Rome"} and set(out["code"]) <= {"A", "B"}
    counts = out["count"].to_numpy(dtype=float)
    lo, hi = frame["count"].min(), frame["count"].max()
    assert (counts >= lo).all() and (counts <= hi).all()


def test_numeric_columns_are_scaled_inside_and_restored(frame):
    enc = TabularEncoder().fit(frame)
    Z = enc.encode(frame)
    assert Z.shape == (len(frame), enc.width) and enc.width == 12
    assert np.nanmin(Z) == 0.0 and np.nanmax(Z) == 1.0
    back = enc.decode(frame, np.nan_to_num(Z, nan=0.5))
    miss = frame["zf"].isna()
    span = frame["zf"].max() - frame["zf"].min()
    np.testing.assert_allclose(back["zf"][miss], frame["zf"].min() + 0.5 * span)
    assert not TabularEncoder(scale=False).fit(frame).encode(frame)[:, 0].max() <= 1.0


def test_encoder_state_survives_json(frame):
    enc = TabularEncoder(missing_values=-1).fit(frame)
    again = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(again.encode(frame), enc.encode(frame))
    values = np.random.default_rng(0).random((len(frame), enc.width))
    pd.testing.assert_frame_equal(again.decode(frame, values), enc.decode(frame, values))
    with pytest.raises(ValueError, match="invalid tabular encoder state"):
        TabularEncoder.from_dict({"columns": ["a"]})


def test_all_missing_column_is_left_missing(frame):
    df = frame.copy()
    df["empty"] = np.nan
    with pytest.warns(RuntimeWarning, match="no observed value"):
        imp = ReverseImputer(**TINY).fit(df)
    out = imp.transform(df)
    assert out["empty"].isna().all()
    assert not out.drop(columns="empty").isna().any().any()
    # A later table that does observe it keeps what it observed.
    later = df.iloc[:3].copy()
    later["empty"] = [1.0, np.nan, 2.0]
    assert imp.transform(later)["empty"].tolist()[::2] == [1.0, 2.0]
    with pytest.warns(RuntimeWarning, match="no observed value"):
        out = NearestNeighborsImputer().fit_transform(df)
    assert out["empty"].isna().all() and not out.drop(columns="empty").isna().any().any()


def test_all_missing_rows_get_one_typical_row(frame):
    df = frame.copy()
    df.iloc[[1, 2]] = None
    imp = ReverseImputer(**TINY).fit(df)
    out = imp.transform(df)
    assert not out.isna().any().any()
    # Without input dropout and restarts the two rows get the very same typical row ...
    plain = imp.set_params(dropout=0.0, clean_samples=1, n_restarts=1).transform(df)
    first, second = plain.iloc[1], plain.iloc[2]
    assert first.astype(object).tolist() == second.astype(object).tolist()
    # ... with it (the default), rows differ only by their dropout noise: close values.
    numeric = out.select_dtypes("number").columns
    span = frame[numeric].max() - frame[numeric].min()
    gap = ((out.iloc[1][numeric] - out.iloc[2][numeric]).abs() / span).astype(float)
    assert gap.max() < 0.2
    out = StatisticImputer().fit_transform(df)
    assert out.iloc[1]["city"] == frame["city"].mode()[0]


def test_unseen_category_is_kept_with_a_warning(frame):
    imp = StatisticImputer().fit(frame)
    new = frame.iloc[:4].copy()
    new["code"] = ["A", "Z", None, "B"]
    with pytest.warns(UserWarning, match="not seen in fit"):
        out = imp.transform(new)
    assert out["code"].tolist()[:2] == ["A", "Z"] and out["code"].iloc[2] in {"A", "B"}


def test_bad_columns_are_named(frame):
    imp = StatisticImputer().fit(frame)
    bad = frame.copy()
    bad["zf"] = bad["zf"].astype(object)
    bad.iloc[0, 0] = "oops"
    with pytest.raises(ValueError, match="'zf' is numeric but holds 1 non-numeric"):
        imp.transform(bad)
    with pytest.raises(ValueError, match="feature names"):
        imp.transform(frame[frame.columns[::-1]])
    when = frame.assign(t=pd.Timestamp("2024-01-01"))
    with pytest.raises(TypeError, match="'t' has dtype datetime64"):
        StatisticImputer().fit(when)
    dup = pd.DataFrame([[1.0, 2.0], [np.nan, 3.0]], columns=["a", "a"])
    with pytest.raises(ValueError, match=r"(duplicate|unique) column names"):
        StatisticImputer().fit(dup)
    with pytest.raises(ValueError, match="every entry is missing"), pytest.warns(RuntimeWarning):
        ReverseImputer(**TINY).fit(pd.DataFrame({"a": [None, None], "b": [np.nan, np.nan]}))


def test_identifier_like_columns_warn():
    df = pd.DataFrame({"id": [f"u{i}" for i in range(120)], "x": np.arange(120.0)})
    # Beyond max_categories="auto" such a column is refused (tests/test_csv_defaults.py);
    # with the limit lifted, it is encoded with a warning.
    with pytest.warns(UserWarning, match="looks like an identifier"):
        TabularEncoder(max_categories=None).fit(df)


def test_numpy_int_column_with_a_sentinel_stays_int():
    df = pd.DataFrame({"n": [1, -1, 3, 4, 2], "x": [0.1, 0.2, 0.3, 0.4, 0.5]})
    out = StatisticImputer(missing_values=-1).fit_transform(df)
    assert out["n"].dtype == np.int64 and out["n"].tolist() == [1, 2, 3, 4, 2]


def test_diagnostics_on_frames(frame):
    imp = ReverseImputer(**TINY).fit(frame)
    details = imp.transform_details(frame)
    assert isinstance(details.X_before_clean, pd.DataFrame)
    assert details.loss.shape == (len(frame),)
    direct = imp.direct_output(frame)
    assert isinstance(direct, pd.DataFrame) and not direct.isna().any().any()
    start = imp.initial_values(frame)
    observed = frame["zf"].notna()
    np.testing.assert_array_equal(start["zf"][observed], frame["zf"][observed])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an array has no feature names
        arr = imp.transform(frame.to_numpy())
    assert arr.shape == frame.shape
