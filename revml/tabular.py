"""Mixed-type tables: pandas DataFrames in, DataFrames out.

The imputers work on a float matrix with NaN for missing entries. :class:`TabularEncoder`
turns a table into that matrix and writes imputed values back:

* numeric (float) columns are min-max scaled to [0, 1] on the observed training values
  (optional) and restored to their own dtype;
* integer columns are encoded like numeric ones; imputed values are rounded, clipped to
  the observed training range and come back in the column's integer dtype;
* boolean columns are encoded as 0/1; an imputed value is ``True`` when it is >= 0.5;
* categorical and string columns are one-hot encoded on the categories observed in
  training; an imputed value is the category with the largest output, so it is always a
  valid category of that column. A column whose one-hot block would be too wide (more
  than 50 categories, or 10 times the other features: ``max_categories``) is refused with
  :class:`TooManyCategoriesError`, which says why it is so wide (numbers with a few text
  tokens in them, an identifier) and what to do;
* a column with no observed value in training is not encoded: it cannot be learned, so
  its missing cells stay missing (with a warning at fit).

Only missing cells are ever written: observed cells, the index, the column order and the
input frame itself are left as they were.
"""

from __future__ import annotations

import math
import shlex
import warnings
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import DataError, DataTypeError

KINDS = ("numeric", "integer", "boolean", "categorical", "empty")

#: A categorical column with more distinct values than this (and more than half its rows)
#: looks like an identifier: one-hot encoding it helps nothing, so the encoder warns.
_ID_LIKE_CATEGORIES = 50

#: A text column is "numbers with a few tokens" when at least this share of its observed
#: cells are numbers: the tokens are then most likely missing-value markers. The same rule
#: as revml.detect's ``text_in_numeric``, so the warning and the detector agree; 90% leaves
#: room for a marker in 1 cell of 10 while a column of codes ("A1", "12", "B7") stays text.
NUMERIC_SHARE = 0.9

#: ``max_categories="auto"``: a column's one-hot block may have at most this many
#: features...
AUTO_MAX_CATEGORIES = 50
#: ... and at most this many times the features of all the other columns: a wider block
#: dominates the autoencoder's loss, and is almost always a mistake (an identifier, or
#: numbers with a marker in them read as text).
AUTO_WIDTH_RATIO = 10


class TooManyCategoriesError(DataError):
    """A categorical column would become more one-hot features than ``max_categories``
    allows; the message names the column, says why it is so wide and how to proceed."""


_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")


def is_dataframe(X: Any) -> bool:
    """Whether ``X`` is a pandas DataFrame."""
    return isinstance(X, pd.DataFrame)


def is_nan_like(value: Any) -> bool:
    """Whether ``value`` is a scalar NaN, ``None`` or ``pandas.NA`` (the default marker)."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:
        return False


def array_missing_mask(X: np.ndarray, missing_values: Any) -> np.ndarray:
    """Boolean mask of the missing entries of a numeric array: NaN, plus ``missing_values``."""
    X = np.asarray(X)
    mask = np.isnan(X) if X.dtype.kind in "fc" else np.zeros(X.shape, dtype=bool)
    if not is_nan_like(missing_values):
        if isinstance(missing_values, str) and X.dtype.kind in "biufc":
            return mask
        mask = mask | (X == missing_values)
    return mask


def series_missing_mask(series: pd.Series, missing_values: Any) -> np.ndarray:
    """Boolean mask of the missing cells of a column: NaN/None/NA, plus ``missing_values``."""
    mask = series.isna().to_numpy(dtype=bool)
    if not is_nan_like(missing_values):
        mask = mask | series.isin([missing_values]).to_numpy(dtype=bool)
    return mask


def _json_scalar(value: Any) -> Any:
    """A category as a JSON value (str, int, float or bool), or a clear error."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str | bool | int | float):
        return value
    raise DataTypeError(
        f"category {value!r} of type {type(value).__name__} cannot be saved: only str, int, "
        "float and bool categories are supported"
    )


@dataclass
class ColumnSpec:
    """How one column is encoded (see :class:`TabularEncoder`)."""

    name: Hashable
    kind: str  #: one of :data:`KINDS`
    categories: list | None = None  #: categorical: observed categories, in one-hot order
    offset: float = 0.0  #: numeric/integer: encoded = (value - offset) / scale
    scale: float = 1.0
    lo: float | None = None  #: numeric/integer: smallest observed training value
    hi: float | None = None  #: numeric/integer: largest observed training value

    @property
    def width(self) -> int:
        """Number of encoded features."""
        if self.kind == "empty":
            return 0
        if self.kind == "categorical":
            return len(self.categories or [])
        return 1


def _infer_kind(series: pd.Series, observed: pd.Series) -> str:
    dtype = series.dtype
    name = series.name
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical" if len(observed) else "empty"
    unsupported = (
        ptypes.is_datetime64_any_dtype(dtype)
        or ptypes.is_timedelta64_dtype(dtype)
        or ptypes.is_complex_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype)
    )
    if unsupported:
        raise DataTypeError(
            f"column {name!r} has dtype {dtype}, which cannot be imputed; convert it to numbers "
            "(e.g. timestamps to seconds) or leave it out of X"
        )
    if not len(observed):
        return "empty"
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "integer"
    if ptypes.is_float_dtype(dtype):
        return "numeric"
    inferred = ptypes.infer_dtype(observed, skipna=True)
    if inferred == "boolean":
        return "boolean"
    if inferred == "integer":
        return "integer"
    if inferred in ("floating", "mixed-integer-float", "decimal"):
        return "numeric"
    return "categorical"


def _sorted_categories(values: pd.Series, dtype: Any) -> list:
    if isinstance(dtype, pd.CategoricalDtype):
        present = set(values.astype(object).tolist())
        return [c for c in dtype.categories.tolist() if c in present]
    unique = pd.unique(values.astype(object))
    try:
        return sorted(unique.tolist())
    except TypeError:  # mixed types (e.g. numbers and strings): a stable order all the same
        return sorted(unique.tolist(), key=lambda v: (type(v).__name__, str(v)))


def _number_mask(values: pd.Series) -> np.ndarray:
    """Which values are numbers, or text that reads as one (booleans are not numbers)."""
    obj = values.astype(object)
    text = obj.map(lambda v: v.strip() if isinstance(v, str) else v)
    parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    is_bool = obj.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    return ~np.isnan(parsed) & ~is_bool


def _tokens_among_numbers(observed: pd.Series) -> dict:
    """``{token: cells}`` when at least :data:`NUMERIC_SHARE` of ``observed`` are numbers
    (numbers written as text included) and some are not; ``{}`` otherwise."""
    # By distinct value, not by cell: a column of a million cells has few of them.
    counts = observed.astype(object).value_counts()
    if counts.empty:
        return {}
    is_num = _number_mask(pd.Series(counts.index, dtype=object))
    share = counts.to_numpy()[is_num].sum() / counts.sum()
    if is_num.all() or share < NUMERIC_SHARE:
        return {}
    return {k: int(v) for k, v in counts[~is_num].items()}


def _cells(tokens: dict) -> str:
    n = sum(tokens.values())
    listed = ", ".join(f"{t!r} ({c})" for t, c in list(tokens.items())[:8])
    more = f" and {len(tokens) - 8} more" if len(tokens) > 8 else ""
    return f"{n} cell{'s' if n != 1 else ''} holding {listed}{more}"


def _mark_advice(name: Hashable, observed: pd.Series, tokens: dict) -> str:
    """How to turn ``tokens`` into missing cells, on the command line and in Python."""
    values = list(tokens)
    shown = repr(values)
    numbers = observed[~observed.isin(values)]
    text_numbers = bool(numbers.map(lambda v: isinstance(v, str)).any())
    if len(values) == 1 and not text_numbers:
        python = f"missing_values={values[0]!r}"  # the numbers are numbers already
    else:  # the estimators' missing_values is one value; apply_markers also types the column
        python = f"revml.detect.apply_markers(X, {{{name!r}: {shown}}})"
    if all(isinstance(v, str) and "," not in v for v in values):
        flag = "--missing-values=" + shlex.quote(",".join(values))
    else:
        flag = "--missing-values with a JSON file from `revml detect --json`"
    return (
        f"mark those tokens missing and it stays numeric: {flag} on the command line, "
        f"{python} in Python"
    )


def _why_wide(name: Hashable, observed: pd.Series, n_cat: int, tokens: dict) -> str:
    if tokens:
        return f"it holds numbers except for {_cells(tokens)}; " + _mark_advice(
            name, observed, tokens
        )
    if _number_mask(pd.Series(pd.unique(observed.astype(object)), dtype=object)).all():
        return "its values are all numbers written as text: convert it (pandas.to_numeric)"
    if n_cat > len(observed) / 2:
        return (
            "it has more distinct values than half its rows and looks like an identifier: "
            "leave it out of X (e.g. ColumnTransformer's remainder='passthrough', or "
            "--exclude on the command line)"
        )
    return "leave it out of X, or group its rare categories"


class TabularEncoder:
    """Encode a DataFrame (or a 2-D numeric array) as floats with NaN; decode imputations.

    Parameters
    ----------
    missing_values : scalar
        Cells equal to this value are missing, in addition to NaN, ``None`` and
        ``pandas.NA``, which always are.
    scale : bool
        Min-max scale numeric and integer columns to [0, 1] on their observed training
        values (one-hot and boolean features already lie in [0, 1]).
    max_categories : "auto", int or None
        The most categories (one-hot features) a column may have; :meth:`fit` raises
        :class:`TooManyCategoriesError` beyond it. ``"auto"``: at most
        :data:`AUTO_MAX_CATEGORIES`, and at most :data:`AUTO_WIDTH_RATIO` times the
        features of the other columns (at least one). An int: that many. ``None``: no
        limit.

    Attributes
    ----------
    columns_ : list
        Column labels seen in :meth:`fit` (``0..d-1`` for an array).
    specs_ : list of ColumnSpec
        One per column, in order.
    is_frame_ : bool
        Whether :meth:`fit` got a DataFrame.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"n": [1.0, None, 3.0], "c": ["a", "b", None]})
    >>> enc = TabularEncoder().fit(df)
    >>> enc.encode(df).tolist()
    [[0.0, 1.0, 0.0], [nan, 0.0, 1.0], [1.0, nan, nan]]
    >>> enc.decode(df, [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [1.0, 0.2, 0.7]])
         n  c
    0  1.0  a
    1  2.0  b
    2  3.0  b
    """

    def __init__(
        self, *, missing_values: Any = np.nan, scale: bool = True, max_categories: Any = "auto"
    ) -> None:
        self.missing_values = missing_values
        self.scale = scale
        self.max_categories = max_categories

    def _check_max_categories(self) -> None:
        cap = self.max_categories
        ok = (
            cap is None
            or (isinstance(cap, str) and cap == "auto")
            or (isinstance(cap, int | np.integer) and not isinstance(cap, bool) and cap >= 1)
        )
        if not ok:
            raise ValueError(f"max_categories must be 'auto', None or an int >= 1, got {cap!r}")

    def _category_limit(self, other_features: int) -> int | None:
        if self.max_categories is None:
            return None
        if isinstance(self.max_categories, str):  # "auto"
            return min(AUTO_MAX_CATEGORIES, AUTO_WIDTH_RATIO * max(other_features, 1))
        return int(self.max_categories)

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any) -> TabularEncoder:
        """Learn each column's kind, categories and scaling from ``X``."""
        self._check_max_categories()
        frame = self._as_frame(X, fitting=True)
        specs: list[ColumnSpec] = []
        empty: list = []
        categorical: list[tuple[ColumnSpec, pd.Series]] = []
        for name in frame.columns:
            series = frame[name]
            miss = series_missing_mask(series, self.missing_values)
            observed = series[~miss]
            kind = _infer_kind(series, observed)
            spec = ColumnSpec(name=name, kind=kind)
            if kind == "empty":
                empty.append(name)
            elif kind in ("numeric", "integer"):
                values = self._numbers(series, miss, name)[~miss]
                if not np.isfinite(values).all():
                    raise ValueError(
                        f"column {name!r} contains infinite values; only missing cells "
                        "(NaN or missing_values) may stand for unknown values"
                    )
                spec.lo, spec.hi = float(values.min()), float(values.max())
                if self.scale:
                    spec.offset = spec.lo
                    spec.scale = spec.hi - spec.lo if spec.hi > spec.lo else 1.0
            elif kind == "boolean":
                self._booleans(series, miss, name)  # validates the values
            else:
                spec.categories = [
                    _json_scalar(c) if isinstance(c, np.generic) else c
                    for c in _sorted_categories(observed, series.dtype)
                ]
                categorical.append((spec, observed))
            specs.append(spec)
        width = sum(s.width for s in specs)
        too_wide: list[str] = []
        advice: list[str] = []
        for spec, observed in categorical:
            n_cat, name = len(spec.categories), spec.name
            tokens = _tokens_among_numbers(observed)
            limit = self._category_limit(width - n_cat)
            if limit is not None and n_cat > limit:
                too_wide.append(
                    f"column {name!r} would become {n_cat} one-hot features, more than the "
                    f"{limit} allowed{self._limit_reason(width - n_cat)}: "
                    + _why_wide(name, observed, n_cat, tokens)
                )
            elif tokens:
                advice.append(
                    f"column {name!r} holds numbers except for {_cells(tokens)}, so it is "
                    f"encoded as text, with {n_cat} one-hot features; "
                    + _mark_advice(name, observed, tokens)
                )
            elif n_cat > _ID_LIKE_CATEGORIES and n_cat > len(observed) / 2:
                advice.append(
                    f"column {name!r} has {n_cat} distinct values (more than half its rows): "
                    f"it looks like an identifier and becomes {n_cat} one-hot features; "
                    "leave it out of X (e.g. ColumnTransformer's remainder='passthrough', or "
                    "--exclude on the command line)"
                )
        if too_wide:
            raise TooManyCategoriesError(
                "; ".join(too_wide)
                + ". To one-hot encode such a column all the same, raise the limit: "
                "max_categories=N or None in Python, --max-categories N or none on the "
                "command line"
            )
        if empty:
            warnings.warn(
                f"column(s) {empty} have no observed value: nothing can be learned about "
                "them, so their missing cells are left missing",
                RuntimeWarning,
                stacklevel=3,
            )
        for message in advice:
            warnings.warn(message, UserWarning, stacklevel=3)
        self.columns_ = list(frame.columns)
        self.specs_ = specs
        self.is_frame_ = is_dataframe(X)
        return self

    def _limit_reason(self, other_features: int) -> str:
        if not isinstance(self.max_categories, str):
            return f" (max_categories={self.max_categories})"
        return (
            f" (max_categories='auto': at most {AUTO_MAX_CATEGORIES}, and at most "
            f"{AUTO_WIDTH_RATIO} times the {other_features} feature(s) of the other columns)"
        )

    # ------------------------------------------------------------------ layout
    @property
    def width(self) -> int:
        """Number of encoded features."""
        return sum(s.width for s in self.specs_)

    def feature_kinds(self) -> list[str]:
        """The kind of the column each encoded feature comes from."""
        return [s.kind for s in self.specs_ for _ in range(s.width)]

    def blocks(self) -> list[tuple[ColumnSpec, slice]]:
        """Each encoded column's spec and its slice of the encoded features."""
        out, start = [], 0
        for spec in self.specs_:
            if spec.width:
                out.append((spec, slice(start, start + spec.width)))
            start += spec.width
        return out

    # ------------------------------------------------------------------ encode
    def _as_frame(self, X: Any, fitting: bool = False) -> pd.DataFrame:
        if is_dataframe(X):
            frame = X
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D (samples x features), got shape {arr.shape}")
            if not fitting and arr.shape[1] != len(self.columns_):
                raise ValueError(
                    f"X has {arr.shape[1]} features, but the encoder was fitted with "
                    f"{len(self.columns_)}"
                )
            frame = pd.DataFrame(arr, columns=range(arr.shape[1]) if fitting else self.columns_)
        if frame.columns.has_duplicates:
            dup = frame.columns[frame.columns.duplicated()].unique().tolist()
            raise ValueError(f"X has duplicate column names {dup}; column names must be unique")
        if not fitting:
            if list(frame.columns) != self.columns_:
                missing = [c for c in self.columns_ if c not in set(frame.columns)]
                extra = [c for c in frame.columns if c not in set(self.columns_)]
                raise ValueError(
                    f"X's columns differ from those seen in fit: missing {missing}, unexpected "
                    f"{extra}" + ("" if missing or extra else " (same names, different order)")
                )
        return frame

    @staticmethod
    def _numbers(series: pd.Series, miss: np.ndarray, name: Hashable) -> np.ndarray:
        if ptypes.is_bool_dtype(series.dtype) or ptypes.is_numeric_dtype(series.dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        bad = np.isnan(values) & ~miss
        if bad.any():
            first = series[bad].iloc[0]
            raise ValueError(
                f"column {name!r} is numeric but holds {int(bad.sum())} non-numeric value(s), "
                f"e.g. {first!r}; mark them missing (missing_values, or revml.detect) first"
            )
        values = values.copy()
        values[miss] = np.nan
        return values

    @staticmethod
    def _booleans(series: pd.Series, miss: np.ndarray, name: Hashable) -> np.ndarray:
        obj = series.astype(object)
        true = obj.isin([True, *_TRUE]).to_numpy(dtype=bool)
        false = obj.isin([False, *_FALSE]).to_numpy(dtype=bool)
        bad = ~miss & ~true & ~false
        if bad.any():
            raise ValueError(
                f"column {name!r} is boolean but holds {int(bad.sum())} other value(s), e.g. "
                f"{series[bad].iloc[0]!r}"
            )
        return np.where(miss, np.nan, true.astype(np.float64))

    def missing(self, X: Any) -> np.ndarray:
        """(n_samples, n_columns) mask of the missing cells of ``X``."""
        frame = self._as_frame(X)
        return np.column_stack(
            [series_missing_mask(frame[c], self.missing_values) for c in frame.columns]
        ).reshape(len(frame), len(self.columns_))

    def encode(self, X: Any) -> np.ndarray:
        """The (n_samples, width) float64 matrix of ``X``; NaN marks missing entries.

        Categories not seen in :meth:`fit` are encoded as all-zero one-hot rows (no known
        category) and, being observed, are never imputed or changed.
        """
        frame = self._as_frame(X)
        out = np.full((len(frame), self.width), np.nan)
        unknown: list = []
        for spec, cols in self.blocks():
            series = frame[spec.name]
            miss = series_missing_mask(series, self.missing_values)
            if spec.kind in ("numeric", "integer"):
                values = self._numbers(series, miss, spec.name)
                if np.isinf(values).any():
                    raise ValueError(f"column {spec.name!r} contains infinite values")
                out[:, cols.start] = (values - spec.offset) / spec.scale
            elif spec.kind == "boolean":
                out[:, cols.start] = self._booleans(series, miss, spec.name)
            else:
                values = series.astype(object).to_numpy()
                codes = pd.Index(spec.categories, dtype=object).get_indexer(values)
                onehot = np.zeros((len(frame), spec.width))
                known = codes >= 0
                onehot[np.flatnonzero(known), codes[known]] = 1.0
                onehot[miss] = np.nan
                out[:, cols] = onehot
                new = ~known & ~miss
                if new.any():
                    unknown.append((spec.name, pd.unique(values[new]).tolist()[:5]))
        if unknown:
            warnings.warn(
                "categories not seen in fit (kept as they are, encoded as no known category): "
                + "; ".join(f"{name!r}: {vals}" for name, vals in unknown),
                UserWarning,
                stacklevel=3,
            )
        return out

    # ------------------------------------------------------------------ decode
    def decode(self, X: Any, values: np.ndarray, cells: np.ndarray | None = None) -> Any:
        """A copy of ``X`` with ``cells`` (default: its missing cells) taken from ``values``.

        ``values`` is an encoded (n_samples, width) matrix. Cells of columns with no
        training observation are never written. Returns a DataFrame for a DataFrame (same
        index, columns and order; integer and boolean columns keep or regain their dtype)
        and a float array for an array.
        """
        frame = self._as_frame(X)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(frame), self.width):
            raise ValueError(
                f"values has shape {values.shape}, expected {(len(frame), self.width)}"
            )
        if cells is None:
            cells = self.missing(frame)
        if not is_dataframe(X):
            arr = np.asarray(X)
            out = np.array(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64)
            for spec, cols in self.blocks():
                j = self.columns_.index(spec.name)
                rows = cells[:, j]
                out[rows, j] = self._decoded(spec, values[rows, cols]).astype(out.dtype)
            return out
        out = frame.copy()
        for spec, cols in self.blocks():
            j = self.columns_.index(spec.name)
            rows = cells[:, j]
            if not rows.any():
                continue
            series = frame.iloc[:, j]
            decoded = self._decoded(spec, values[rows, cols])
            filled = self._write(series, rows, decoded, spec)
            out.isetitem(j, filled)
        return out

    @staticmethod
    def _decoded(spec: ColumnSpec, block: np.ndarray) -> np.ndarray:
        if spec.kind == "categorical":
            idx = np.argmax(block, axis=1)
            cats = np.empty(len(spec.categories), dtype=object)
            cats[:] = spec.categories
            return cats[idx]
        col = block[:, 0]
        if spec.kind == "boolean":
            return col >= 0.5
        col = col * spec.scale + spec.offset
        if spec.kind == "integer":
            col = np.clip(np.rint(col), spec.lo, spec.hi)
        return col

    @staticmethod
    def _write(series: pd.Series, rows: np.ndarray, decoded: np.ndarray, spec: ColumnSpec):
        """``series`` with ``rows`` replaced by ``decoded``, in the column's dtype."""
        dtype = series.dtype
        index, name = series.index, series.name
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            if spec.kind == "numeric" and dtype.kind in "biu":
                dtype = np.dtype(np.float64)  # fitted as float: do not truncate imputations
            arr = series.to_numpy(dtype=dtype, copy=True)
            arr[rows] = decoded.astype(dtype)
            return pd.Series(arr, index=index, name=name)
        if not isinstance(dtype, np.dtype):  # pandas extension dtypes: category, Int64, str...
            arr = series.array.copy()
            try:
                arr[rows] = decoded
                return pd.Series(arr, index=index, name=name)
            except (TypeError, ValueError):
                pass  # e.g. a value this dtype cannot hold: fall back to object
        obj = series.to_numpy(dtype=object, copy=True)
        obj[rows] = decoded.tolist()
        result = pd.Series(obj, index=index, name=name)
        if result.isna().any():
            return result
        # An object column that was boolean or integer only because it held missing cells.
        if spec.kind == "boolean":
            return result.astype(bool)
        if spec.kind == "integer":
            return result.astype(np.int64)
        return result

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict:
        """JSON-ready state (see :meth:`from_dict`)."""
        for name in self.columns_:
            if not isinstance(name, str | int) or isinstance(name, bool):
                raise DataTypeError(
                    f"column label {name!r} cannot be saved: only str and int labels can"
                )
        specs = []
        for spec in self.specs_:
            d = asdict(spec)
            if d["categories"] is not None:
                d["categories"] = [_json_scalar(c) for c in d["categories"]]
            specs.append(d)
        mv = self.missing_values
        return {
            "missing_values": None if is_nan_like(mv) else _json_scalar(mv),
            "scale": bool(self.scale),
            "is_frame": bool(self.is_frame_),
            "columns": list(self.columns_),
            "specs": specs,
        }

    @classmethod
    def from_dict(cls, state: dict) -> TabularEncoder:
        """Rebuild an encoder from :meth:`to_dict`'s output."""
        try:
            mv = state["missing_values"]
            enc = cls(missing_values=np.nan if mv is None else mv, scale=bool(state["scale"]))
            enc.columns_ = list(state["columns"])
            enc.specs_ = [ColumnSpec(**s) for s in state["specs"]]
            enc.is_frame_ = bool(state["is_frame"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"invalid tabular encoder state: {err!r}") from None
        if [s.name for s in enc.specs_] != enc.columns_ or any(
            s.kind not in KINDS for s in enc.specs_
        ):
            raise ValueError("invalid tabular encoder state: columns and specs disagree")
        return enc
