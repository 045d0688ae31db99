"""The command line on small files: detect, fit, impute, evaluate, CSV and Parquet, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from revml.cli import main

#: Tiny autoencoder options for every command that trains one.
FAST = ["--epochs", "2", "--n-steps", "4", "--hidden", "8", "--bottleneck", "2", "--quiet"]


def messy_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "id": [f"p{i:03d}" for i in range(n)],
            "age": np.round(45 + 12 * z).astype(int).astype(object),
            "bp": np.round(72 + 8 * z + rng.normal(0, 3, n)),
            "smoker": np.where(z > 0.3, "yes", "no").astype(object),
            "active": rng.random(n) > 0.5,
        }
    )
    df.loc[:4, "age"] = -999
    df.loc[5:7, "age"] = "N/A"
    df.loc[8:13, "bp"] = 0
    df.loc[14:16, "smoker"] = " "
    df.loc[17:19, "bp"] = np.nan  # an empty field in the CSV
    return df


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "data.csv"
    messy_frame().to_csv(path, index=False)
    return path


def test_detect_prints_the_report_and_writes_json(csv, tmp_path, capsys):
    out = tmp_path / "markers.json"
    assert main(["detect", str(csv), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    # "N/A" and " " are read as missing, as pandas reads them, and the report says so.
    assert "age (integer, 3 missing already): 5 more cells would be missing" in text
    assert "sentinel" in text and "zero" in text
    assert '"N/A" x3' in text and '" " x3' in text and "--no-default-na" in text
    assert "bp (numeric, 3 missing already)" in text  # empty fields are missing already
    data = json.loads(out.read_text())
    assert {c["name"] for c in data["columns"] if c["markers"]} == {"age", "bp"}
    assert {r["name"] for r in data["read_as_missing"]} == {"age", "bp", "smoker"}
    # With --no-default-na every token but the empty field is a marker to decide on.
    assert main(["detect", str(csv), "--no-default-na", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "age (integer): 8 more cells would be missing" in text
    assert "sentinel" in text and "zero" in text and "whitespace" in text
    assert "bp (numeric, 3 missing already)" in text
    data = json.loads(out.read_text())
    assert {c["name"] for c in data["columns"] if c["markers"]} == {"age", "bp", "smoker"}


def test_impute_with_detect_writes_a_complete_csv(csv, tmp_path, capsys):
    out = tmp_path / "filled.csv"
    code = main(["impute", str(csv), "-o", str(out), "--detect", "--exclude", "id", *FAST])
    assert code == 0
    err = capsys.readouterr().err
    assert "treating as missing:" in err and "age: -999 (5 cells)" in err
    assert '"N/A" x3' in err  # read as missing as pandas reads it: the report says so
    filled = pd.read_csv(out)
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert list(filled.columns) == list(raw.columns) and len(filled) == len(raw)
    assert not filled.isna().any().any()
    assert filled["id"].tolist() == raw["id"].tolist()
    assert (filled["age"] > 0).all() and filled["age"].dtype == np.int64
    assert (filled["bp"] > 0).all() and set(filled["smoker"]) == {"yes", "no"}
    kept = raw["bp"].ne("") & raw["bp"].ne("0.0")
    np.testing.assert_array_equal(filled["bp"][kept], raw["bp"][kept].astype(float))


def test_without_detect_markers_stay_data_and_a_note_says_so(csv, tmp_path, capsys):
    out = tmp_path / "filled.csv"
    assert main(["impute", str(csv), "-o", str(out), "--exclude", "id", *FAST]) == 0
    err = capsys.readouterr().err
    assert "note: `revml detect` finds possible missing-value markers" in err
    filled = pd.read_csv(out, keep_default_na=False)
    assert (filled["age"].astype(str) == "-999").sum() == 5


def test_fit_then_impute_with_the_model_and_parquet(csv, tmp_path, capsys):
    model = tmp_path / "model"
    # A list that starts with "-" needs the "=" form, as for any argparse option value.
    code = main(
        ["fit", str(csv), "-o", str(model), "--missing-values=-999,N/A,0", "--exclude", "id", *FAST]
    )
    assert code == 0
    assert {p.name for p in model.iterdir()} == {
        "config.json",
        "model.safetensors",
        "missing_values.json",
    }
    parquet = tmp_path / "data.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    out = tmp_path / "filled.parquet"
    code = main(["impute", str(csv), "-o", str(out), "--model", str(model), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "using the missing-value markers saved with the model" in err
    filled = pd.read_parquet(out)
    assert list(filled.columns) == ["id", "age", "bp", "smoker", "active"]
    assert not filled.isna().any().any() and (filled["bp"] > 0).all()
    assert filled["active"].dtype == bool
    again = tmp_path / "again.parquet"
    assert main(["impute", str(csv), "-o", str(again), "--model", str(model), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(again), filled)  # deterministic


def test_parquet_input(tmp_path):
    df = messy_frame().drop(columns=["age"])
    df["bp"] = df["bp"].replace(0, np.nan)
    path = tmp_path / "typed.parquet"
    df.to_parquet(path)
    out = tmp_path / "out.csv"
    assert main(["impute", str(path), "-o", str(out), "--exclude", "id", *FAST]) == 0
    filled = pd.read_csv(out, keep_default_na=False)
    assert len(filled) == len(df) and (filled["bp"] != "").all()


def test_evaluate_prints_a_table_chart_and_json(csv, tmp_path, capsys):
    chart, report = tmp_path / "errors.png", tmp_path / "res.json"
    code = main(
        [
            "evaluate",
            str(csv),
            "--detect",
            "--exclude",
            "id",
            "--methods",
            "mean,knn,reverse,direct_ae",
            "--fraction",
            "0.3",
            "--chart",
            str(chart),
            "--json",
            str(report),
            *FAST,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "hid" in out and "(30%, mcar, seed 0)" in out
    for name in ("mean", "knn", "reverse", "direct_ae", "RMSE per numeric column", "smoker"):
        assert name in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    rows = json.loads(report.read_text())["rows"]
    assert {r["method"] for r in rows} == {"mean", "knn", "reverse", "direct_ae"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["detect", "missing.csv"], "no such file"),
        (["detect", "data.xlsx"], "cannot tell the format"),
        (["impute", "{csv}", "-o", "out.xlsx"], "cannot tell the format"),
        (["evaluate", "{csv}", "--methods", "mean,mice", "--quiet"], "unknown method 'mice'"),
        (["impute", "{csv}", "-o", "o.csv", "--exclude", "nope"], "--exclude names columns"),
        (["impute", "{csv}", "-o", "o.csv", "--model", "{tmp}/none"], "no saved imputer"),
        (["evaluate", "{csv}", "--fraction", "1.5", "--quiet"], "fraction must be in"),
        (["fit", "{csv}", "-o", "m", "--hidden", "8,x"], "widths like 64,32 are expected"),
    ],
)
def test_user_errors_exit_2_with_a_message(csv, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(csv=csv, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    # revml's own errors, or argparse's usage errors ("revml fit: error: argument ...")
    assert re.match(r"revml( \w+)?: error: ", last) and message in last, last


def test_usage_errors_and_help(capsys):
    assert main(["impute"]) == 2
    assert "the following arguments are required" in capsys.readouterr().err
    assert main(["evaluate", "x.csv", "--mechanism", "weird"]) == 2
    assert main(["impute", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--model", "--detect", "--missing-values", "--exclude", "--seed", "--device"):
        assert option in text
    assert "--quiet" in text and "no progress bars" in text


def test_a_bug_is_not_a_user_error(csv, tmp_path, monkeypatch):
    """Only revml's own errors (and ValueError) exit 2; anything else keeps its traceback."""
    import revml.commands

    def broken(*args, **kwargs):
        raise TypeError("a bug, not the user's doing")

    monkeypatch.setattr(revml.commands, "read_table", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["fit", str(csv), "-o", str(tmp_path / "m"), "--quiet"])
    monkeypatch.setattr(
        revml.commands, "read_table", lambda *a, **k: (_ for _ in ()).throw(KeyError("k"))
    )
    with pytest.raises(KeyError):
        main(["fit", str(csv), "-o", str(tmp_path / "m"), "--quiet"])


def test_imputation_flags_reach_a_loaded_model_and_training_flags_do_not():
    from revml.cli import build_parser
    from revml.commands import transform_flags

    flags = ["--n-steps", "3", "--backend", "reference", "--epochs", "5", "--precision", "float32"]
    args = build_parser().parse_args(["impute", "d.csv", "-o", "o.csv", "--model", "m", *flags])
    assert transform_flags(args) == {"n_steps": 3, "backend": "reference", "precision": "float32"}
    assert transform_flags(build_parser().parse_args(["impute", "d.csv", "-o", "o.csv"])) == {}
