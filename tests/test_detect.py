"""The missing-marker detector: what it flags, what it leaves alone, report, JSON, apply."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from revml.detect import Detection, apply_markers, count_markers, detect


@pytest.fixture
def messy():
    rng = np.random.default_rng(0)
    n = 150
    bp = rng.normal(72, 9, n).round()
    bp[:10] = 0  # impossible blood pressure
    age = rng.integers(18, 90, n).astype(object)
    age[10:16] = -999  # 9s sentinel
    age[16:18] = "N/A"
    weight = rng.normal(70, 12, n).round(1)
    weight[18:24] = 555.0  # repeated value far outside the distribution
    children = rng.poisson(1.2, n).astype(float)  # zeros are plausible here
    height = rng.normal(170, 10, n).round()
    height[24:27] = -1  # the only negative value
    city = rng.choice(["Oslo", "Rome", "Lima"], n).astype(object)
    city[27:29] = ""
    city[29:31] = "   "
    city[31:34] = "nothing"
    city[34:36] = "NULL"
    city[36] = "0"  # a placeholder number in a text column
    city[37] = None
    income = rng.normal(50_000, 9_000, n).round().astype(object)
    income[38:41] = "unknown"  # text in a numeric column
    ok_99 = rng.integers(40, 100, n).astype(float)  # 99 is an ordinary value here
    binary = (rng.random(n) > 0.9).astype(float)
    return pd.DataFrame(
        {
            "bp": bp,
            "age": age,
            "weight": weight,
            "children": children,
            "height": height,
            "city": city,
            "income": income,
            "ok_99": ok_99,
            "binary": binary,
        }
    )


def kinds(found: Detection, column) -> dict:
    return {m.value: m.kind for m in found[column].markers}


def test_flags_each_kind_of_marker(messy):
    found = detect(messy)
    assert kinds(found, "bp") == {0: "zero"}
    assert kinds(found, "age") == {"N/A": "string", -999: "sentinel"}
    assert kinds(found, "weight") == {555: "outlier"}
    assert kinds(found, "height") == {-1: "negative"}
    assert kinds(found, "city") == {
        "": "empty",
        "   ": "whitespace",
        "nothing": "string",
        "NULL": "string",
        "0": "number_in_text",
    }
    assert kinds(found, "income") == {"unknown": "text_in_numeric"}
    counts = {m.value: m.count for m in found["city"].markers}
    assert counts == {"": 2, "   ": 2, "nothing": 3, "NULL": 2, "0": 1}
    assert found["city"].n_null == 1 and found["city"].n_missing == 11
    assert found["age"].type == "integer" and found["income"].type == "numeric"


def test_leaves_plausible_values_alone(messy):
    found = detect(messy)
    for column in ("children", "ok_99", "binary"):
        assert found[column].markers == [], column
    assert "children" not in found.missing_values


def test_reasons_and_report_are_readable(messy):
    found = detect(messy)
    reason = found["age"].markers[1].reason
    assert "robust SDs below the median" in reason and "outside the other values" in reason
    text = found.report()
    assert text.splitlines()[0].startswith("Missing-value markers: 150 rows, 9 columns")
    assert "age (integer): 8 more cells would be missing" in text
    assert '"N/A"  x2' in text and "-999" in text
    assert "No markers in: children (numeric), ok_99 (numeric), binary (numeric)" in text


def test_json_round_trip_and_edits(messy, tmp_path):
    found = detect(messy)
    path = tmp_path / "markers.json"
    found.to_json(path)
    data = json.loads(path.read_text())
    assert data["n_rows"] == 150 and data["columns"][0]["name"] == "bp"
    again = Detection.from_json(path)
    assert again.missing_values == found.missing_values
    edited = found.drop("weight").drop("city", "0").add("children", 0, reason="survey code")
    assert "weight" not in edited.missing_values
    assert "0" not in edited.missing_values["city"]
    assert edited.missing_values["children"] == [0]
    assert "weight" in found.missing_values  # edits return copies
    with pytest.raises(KeyError, match="no such marker"):
        found.drop("weight", 123)
    with pytest.raises(KeyError, match="no column"):
        found["nope"]
    with pytest.raises(ValueError, match="not a revml detection"):
        Detection.from_dict({"rows": []})


def test_apply_sets_markers_missing_and_types_columns(messy):
    found = detect(messy)
    clean = found.apply(messy)
    assert clean["bp"].isna().sum() == 10 and (clean["bp"].dropna() > 0).all()
    assert clean["age"].dtype == "Int64" and clean["age"].isna().sum() == 8
    assert clean["income"].dtype == np.float64 and clean["income"].isna().sum() == 3
    assert set(clean["city"].dropna()) == {"Oslo", "Rome", "Lima"}
    assert clean["city"].isna().sum() == 11
    pd.testing.assert_series_equal(clean["children"], messy["children"])
    assert messy["bp"].eq(0).sum() == 10  # the input is untouched
    every = apply_markers(messy, [-999, "N/A"])
    assert every["age"].isna().sum() == 8 and every["city"].isna().sum() == 1
    assert count_markers(messy, {"age": ["N/A", -999]}) == {"age": {"N/A": 2, -999: 6}}
    with pytest.raises(KeyError, match="not in the data"):
        apply_markers(messy, {"nope": [0]})


def test_csv_files_are_read_as_written(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,NA\n2,x\n,y\n4,NA\n5,y\n")
    found = detect(path)
    assert found.source == str(path)
    assert found["a"].n_null == 1 and found["a"].markers == []  # an empty field: missing
    # "NA" is missing as pandas reads it, and the detection says it was read so.
    assert found["b"].n_null == 2 and found["b"].markers == []
    assert found.read_as_missing == {"a": {"": 1}, "b": {"NA": 2}}
    kept = detect(path, keep_default_na=False)  # then every token is seen as written
    assert kept["a"].n_null == 1 and kept.read_as_missing == {}
    assert kinds(kept, "b") == {"NA": "string"}


def test_bad_arguments():
    df = pd.DataFrame({"a": [1, 2, 3]})
    with pytest.raises(ValueError, match="threshold"):
        detect(df, threshold=0)
    with pytest.raises(ValueError, match="unknown marker kinds"):
        detect(df, kinds=["zeros"])
    with pytest.raises(ValueError, match="extension"):
        detect("data.xlsx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        detect("does-not-exist.csv")
