"""A table as people bring it: pandas' NA tokens read as missing, numbers with a marker in
them diagnosed as such, one-hot blow-ups refused, and the whole path as the user sees it."""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from revml.cli import build_parser, main
from revml.commands import imputer_params
from revml.datasets import MESSY_CITIES, MESSY_MISSING, MESSY_SENTINEL, messy_table
from revml.detect import Detection, detect
from revml.io import DEFAULT_NA_VALUES, default_na_counts, iter_raw, read_raw
from revml.table_input import Log, read_table
from revml.tabular import TabularEncoder, TooManyCategoriesError

#: The e2e run's training options: few epochs so the test stays fast; the update bound
#: below is computed from them.
EPOCHS, ROWS = 3, 300
#: The smallest training batch revml picks by itself (revml.training.default_train_config
#: never goes below 16 rows), so an epoch is at most ceil(rows / 16) optimiser updates.
MIN_BATCH = 16
NUMERIC = ("age", "income", "score")


# ---------------------------------------------------------------------- reading


def test_the_default_tokens_are_pandas_own():
    try:
        from pandas._libs.parsers import STR_NA_VALUES  # private: only to catch drift
    except ImportError:
        pytest.skip("this pandas has no pandas._libs.parsers.STR_NA_VALUES to compare with")
    assert set(STR_NA_VALUES) == DEFAULT_NA_VALUES


@pytest.fixture
def tokens_csv(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text("a,b,c\n1,NA,x\nN/A,NULL,y\n3, ,None\n,nan,   \n-999,?, NA\n6,na,n/a\n")
    return path


def test_read_raw_reads_pandas_default_tokens_as_missing(tokens_csv):
    raw = read_raw(tokens_csv)
    missing = raw.isna().to_dict(orient="list")
    assert missing["a"] == [False, True, False, True, False, False]
    assert missing["b"] == [True, True, True, True, False, False]  # " " is blank: missing
    assert missing["c"] == [False, False, True, True, False, True]  # "   " too
    # -999 and "?" are for the detector to judge; " NA" and "na" are not pandas tokens (it
    # matches exactly): all kept as written.
    assert raw["a"][4] == "-999" and raw["b"][4:].tolist() == ["?", "na"]
    assert raw["c"][4] == " NA"
    # The same cells as pandas' own read_csv, but for the blanks, which pandas keeps.
    theirs = pd.read_csv(tokens_csv, dtype=str).isna()
    blank = pd.read_csv(tokens_csv, dtype=str, keep_default_na=False).apply(
        lambda s: s.str.strip().eq("") & s.ne("")
    )
    pd.testing.assert_frame_equal(raw.isna(), theirs | blank)


def test_keep_default_na_false_keeps_every_token(tokens_csv):
    raw = read_raw(tokens_csv, keep_default_na=False)
    assert not raw.isna().any().any()
    assert raw["a"].tolist() == ["1", "N/A", "3", "", "-999", "6"]
    assert raw["b"].tolist() == ["NA", "NULL", " ", "nan", "?", "na"]
    assert default_na_counts(raw) == {
        "a": {"N/A": 1, "": 1},
        "b": {"NA": 1, "NULL": 1, " ": 1, "nan": 1},
        "c": {"None": 1, "   ": 1, "n/a": 1},
    }


@pytest.mark.parametrize("keep_default_na", [True, False])
def test_chunks_read_as_the_whole_table(tmp_path, keep_default_na):
    path = tmp_path / "messy.csv"
    path.write_text(messy_table(50, seed=3))
    whole = read_raw(path, keep_default_na=keep_default_na)
    chunks = list(iter_raw(path, 7, keep_default_na=keep_default_na))
    assert [len(c) for c in chunks] == [7] * 7 + [1]
    pd.testing.assert_frame_equal(pd.concat(chunks), whole)
    assert whole.isna().any().any() == keep_default_na


def test_detect_says_which_cells_were_read_as_missing(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text(messy_table(ROWS, seed=0))
    found = detect(path)
    as_text = pd.read_csv(path, dtype=str, keep_default_na=False)
    for name in as_text.columns:
        written = as_text[name]
        expected = {t: int(written.eq(t).sum()) for t in MESSY_MISSING if written.eq(t).any()}
        assert found.read_as_missing[name] == expected, name
        assert found[name].n_null == sum(expected.values())
    assert found.missing_values == {"income": [-999]}  # what only the detector can judge
    assert found["score"].type == "numeric" and found["age"].type == "integer"
    text = found.report()
    assert "Read as missing already:" in text and "--no-default-na" in text
    assert re.search(r'age\s+.*"N/A" x\d+', text)
    again = Detection.from_dict(found.to_dict())
    assert again.read_as_missing == found.read_as_missing
    kept = detect(path, keep_default_na=False)
    assert kept.read_as_missing == {}
    assert {m.value for m in kept["score"].markers} >= {"N/A", "NULL", "NaN", "None", " "}


# ---------------------------------------------------------------------- the CLI's reading


def _read_as_cli(argv: list[str]) -> tuple[pd.DataFrame, str]:
    """``revml``'s reading of the data for ``argv``, and what it logs on stderr."""
    args = build_parser().parse_args(argv)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        frame, _, _ = read_table(args, Log(args.quiet))
    return frame, err.getvalue()


def test_the_note_names_columns_tokens_counts_and_the_flag(tmp_path):
    rng = np.random.default_rng(0)
    n = 80
    income = rng.normal(50_000, 5_000, n).round(2).astype(str).astype(object)
    income[:6] = "-999"
    city = rng.choice(["Oslo", "Lima"], n).astype(object)
    city[6:9] = "?"
    df = pd.DataFrame({"income": income, "city": city, "x": rng.normal(size=n).round(3)})
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    frame, err = _read_as_cli(["impute", str(path), "-o", "out.csv", "--quiet"])
    assert "income: -999 (6 cells)" in err and "city: '?' (3 cells)" in err
    assert "add --detect, or --missing-values='-999,?' to treat them as missing" in err
    assert (frame["income"] == -999).sum() == 6  # a note, nothing applied

    # A list applies to every column: where it would hit unflagged cells, the note says so
    # and points to the per-column JSON instead.
    df["bp"] = np.where(np.arange(n) < 5, 0.0, rng.normal(120, 8, n).round())
    df["children"] = rng.poisson(1.0, n)  # zeros are real here
    df.to_csv(path, index=False)
    _, err = _read_as_cli(["impute", str(path), "-o", "out.csv", "--quiet"])
    assert "bp: 0 (5 cells)" in err
    assert "would also hit other cells" in err and "children (" in err
    assert f"revml detect {path} --json markers.json" in err


def test_no_default_na_keeps_na_as_a_category(tmp_path):
    path = tmp_path / "regions.csv"
    region = ["NA", "EU", "APAC", "NA", "EU", "", "NA", "APAC"] * 5
    pd.DataFrame({"region": region, "sales": np.arange(40.0)}).to_csv(path, index=False)
    frame, err = _read_as_cli(["fit", str(path), "-o", "m", "--no-default-na"])
    assert frame["region"].isna().sum() == 5  # the empty fields only
    assert (frame["region"] == "NA").sum() == 15
    assert TabularEncoder().fit(frame).specs_[0].categories == ["APAC", "EU", "NA"]
    frame, err = _read_as_cli(["fit", str(path), "-o", "m"])
    assert frame["region"].isna().sum() == 20 and "read 20 cells as missing" in err


def test_max_categories_flag_reaches_the_params_only_when_given(tmp_path):
    def params(*extra):
        return imputer_params(build_parser().parse_args(["fit", "d.csv", "-o", "m", *extra]))

    assert "max_categories" not in params()
    assert params("--max-categories", "300")["max_categories"] == 300
    assert params("--max-categories", "none")["max_categories"] is None
    with pytest.raises(SystemExit):  # a usage error, named by the parameter table
        params("--max-categories", "0")
    assert main(["fit", "d.csv", "-o", "m", "--max-categories", "0"]) == 2


# ---------------------------------------------------------------------- encoding


def _scores(n: int, tokens: dict, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    values = rng.normal(50, 15, n).round(1).astype(str).astype(object)
    start = 0
    for token, count in tokens.items():
        values[start : start + count] = token
        start += count
    return pd.Series(values, name="score")


def test_numbers_with_a_few_tokens_are_diagnosed_as_such():
    df = pd.DataFrame({"score": _scores(40, {"?": 2, "n.a.": 1}), "x": np.arange(40.0)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TabularEncoder(max_categories=None).fit(df)
    (message,) = [str(w.message) for w in caught]
    assert "column 'score' holds numbers except for 3 cells holding '?' (2), 'n.a.' (1)" in (
        message
    )
    assert "--missing-values='?,n.a.'" in message
    assert "apply_markers(X, {'score': ['?', 'n.a.']})" in message
    assert "identifier" not in message


def test_a_wide_one_hot_block_is_refused_unless_asked_for():
    df = pd.DataFrame({"score": _scores(300, {"N/A": 20, "?": 10}), "x": np.arange(300.0)})
    with pytest.raises(TooManyCategoriesError) as caught:
        TabularEncoder().fit(df)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert "column 'score' would become" in message and "more than the 10 allowed" in message
    assert "numbers except for 30 cells holding 'N/A' (20), '?' (10)" in message
    assert "--missing-values='N/A,?'" in message and "max_categories=N or None" in message
    assert "--max-categories N or none" in message
    with pytest.warns(UserWarning, match="holds numbers except for 30 cells"):
        enc = TabularEncoder(max_categories=None).fit(df)
    assert enc.specs_[0].width > 200
    # An explicit cap, both ways; and the 50-category ceiling of "auto" on a wide table.
    with pytest.warns(UserWarning):
        TabularEncoder(max_categories=enc.specs_[0].width).fit(df)
    with pytest.raises(TooManyCategoriesError, match=r"\(max_categories=100\)"):
        TabularEncoder(max_categories=100).fit(df)
    wide = pd.DataFrame({f"x{j}": np.arange(300.0) for j in range(20)})
    wide["code"] = [f"c{i % 60}" for i in range(300)]
    with pytest.raises(TooManyCategoriesError, match="60 one-hot features, more than the 50"):
        TabularEncoder().fit(wide)
    wide["code"] = [f"c{i % 50}" for i in range(300)]
    TabularEncoder().fit(wide)
    with pytest.raises(ValueError, match="max_categories must be 'auto', None or an int"):
        TabularEncoder(max_categories=0).fit(wide)


def test_an_identifier_is_refused_with_its_own_advice():
    df = pd.DataFrame({"id": [f"u{i}" for i in range(120)], "x": np.arange(120.0)})
    with pytest.raises(TooManyCategoriesError, match=r"looks like an identifier.*--exclude"):
        TabularEncoder().fit(df)


# ---------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """`revml impute messy.csv -o filled.csv --seed 0`, fast options, once for the module."""
    folder = tmp_path_factory.mktemp("messy")
    src, dst = folder / "messy.csv", folder / "filled.csv"
    src.write_text(messy_table(ROWS, seed=0))
    argv = ["impute", str(src), "-o", str(dst), "--seed", "0"]
    argv += ["--epochs", str(EPOCHS), "--n-steps", "5"]  # no --quiet: the log is checked
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return {"code": code, "src": src, "dst": dst, "stderr": err.getvalue()}


def test_the_user_gets_a_complete_table(user_run):
    assert user_run["code"] == 0, user_run["stderr"][-3000:]
    text = pd.read_csv(user_run["dst"], dtype=str, keep_default_na=False)
    left = text.isin(MESSY_MISSING) | text.apply(lambda s: s.str.strip().eq(""))
    assert not left.any().any(), text[left.any(axis=1)]
    assert not text.isin(list(DEFAULT_NA_VALUES)).any().any()


def test_numeric_columns_come_back_numeric(user_run):
    filled = pd.read_csv(user_run["dst"])
    assert filled["age"].dtype == np.int64
    assert filled["income"].dtype == np.float64 and filled["score"].dtype == np.float64
    assert set(filled["city"]) <= set(MESSY_CITIES)
    assert set(filled["member"]) <= {"yes", "no"}


def test_observed_cells_are_unchanged(user_run):
    before = pd.read_csv(user_run["src"], dtype=str, keep_default_na=False)
    after = pd.read_csv(user_run["dst"], dtype=str, keep_default_na=False)
    assert before.shape == after.shape and list(before.columns) == list(after.columns)
    for name in before.columns:
        observed = ~before[name].isin(MESSY_MISSING)
        if name in NUMERIC:
            np.testing.assert_array_equal(
                after[name][observed].astype(float), before[name][observed].astype(float)
            )
        else:
            assert after[name][observed].tolist() == before[name][observed].tolist()
    # -999 is observed data until someone says otherwise: kept, and the note says so.
    assert (after["income"][before["income"] == MESSY_SENTINEL].astype(float) == -999).all()
    assert "income: -999 (" in user_run["stderr"]
    assert "add --detect, or --missing-values=-999 to treat them as missing" in (user_run["stderr"])


def test_training_takes_a_bounded_number_of_updates(user_run):
    found = re.search(r"trained the autoencoder: (\d+) updates", user_run["stderr"])
    assert found is not None, user_run["stderr"][-3000:]
    bound = EPOCHS * math.ceil(ROWS / MIN_BATCH)
    assert 1 <= int(found.group(1)) <= bound


def test_chunked_and_in_memory_imputation_read_alike(tmp_path):
    src = tmp_path / "messy.csv"
    src.write_text(messy_table(120, seed=1))
    model = tmp_path / "model"
    fast = ["--epochs", "2", "--n-steps", "4", "--hidden", "8", "--bottleneck", "2", "--quiet"]
    assert main(["fit", str(src), "-o", str(model), *fast]) == 0
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert main(["impute", str(src), "-o", str(whole), "--model", str(model), "--quiet"]) == 0
    chunks = ["--model", str(model), "--chunk-rows", "50", "--quiet"]
    assert main(["impute", str(src), "-o", str(chunked), *chunks]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(chunked), pd.read_csv(whole))
    assert not pd.read_csv(whole).isna().any().any()


def test_no_default_na_is_kept_with_the_model_and_in_chunks(tmp_path, capsys):
    src = tmp_path / "regions.csv"
    region = ["NA", "EU", "APAC", "NA", "EU", "", "NA", "APAC"] * 5
    sales = np.arange(40.0)
    sales[::7] = np.nan
    pd.DataFrame({"region": region, "sales": sales}).to_csv(src, index=False)
    model = tmp_path / "model"
    fast = ["--epochs", "2", "--n-steps", "4", "--hidden", "8", "--bottleneck", "2", "--quiet"]
    assert main(["fit", str(src), "-o", str(model), "--no-default-na", *fast]) == 0
    out = tmp_path / "out.csv"
    assert main(["impute", str(src), "-o", str(out), "--model", str(model), "--quiet"]) == 0
    assert "reading the data with --no-default-na, as the model was fitted" in (
        capsys.readouterr().err
    )
    filled = pd.read_csv(out, keep_default_na=False)
    assert (filled["region"] == "NA").sum() >= 15 and (filled["region"] != "").all()
    chunked = tmp_path / "chunked.csv"
    args = ["impute", str(src), "-o", str(chunked), "--model", str(model), "--chunk-rows", "10"]
    assert main([*args, "--quiet"]) == 0
    # Chunks read "NA" as data too. The numbers agree to float rounding, the promise for
    # chunking (float32 products can round a row differently with the rows beside it).
    parts = pd.read_csv(chunked, keep_default_na=False)
    assert parts["region"].tolist() == filled["region"].tolist()
    np.testing.assert_allclose(parts["sales"], filled["sales"], rtol=1e-6, atol=0)


def test_the_cli_refuses_a_wide_column_until_asked(tmp_path, capsys):
    from revml.imputer import ReverseImputer

    assert "max_categories" in ReverseImputer().get_params()
    src = tmp_path / "people.csv"
    rng = np.random.default_rng(0)
    x = rng.normal(size=120).round(3)
    x[::9] = np.nan
    pd.DataFrame({"id": [f"u{i:03d}" for i in range(120)], "x": x}).to_csv(src, index=False)
    fast = ["--epochs", "1", "--n-steps", "2", "--hidden", "8", "--bottleneck", "2", "--quiet"]
    assert main(["fit", str(src), "-o", str(tmp_path / "m"), *fast]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("revml: error: column 'id' would become 120 one-hot features")
    assert "--exclude" in last and "--max-categories N or none" in last
    with pytest.warns(UserWarning, match="looks like an identifier"):
        code = main(["fit", str(src), "-o", str(tmp_path / "m"), "--max-categories=none", *fast])
    assert code == 0
