"""Find what is really missing: values that mean "unknown" without being NaN.

People write NULL, "", " ", "N/A", "Nothing", "?", -999, 0... :func:`detect` scans a
DataFrame or a CSV/Parquet file and reports, per column, every value it would treat as
missing, how often it occurs and why:

``empty`` / ``whitespace``
    Empty or whitespace-only strings (in a file, these are read as missing already, with
    pandas' NA tokens, unless ``keep_default_na=False``: see :func:`revml.io.read_raw`).
``string``
    Common markers, matched case-insensitively after stripping: see
    :data:`STRING_MARKERS`.
``text_in_numeric``
    Text in a column whose other values (at least 90%,
    :data:`revml.tabular.NUMERIC_SHARE`) are numbers.
``number_in_text``
    A placeholder number (0, -1, -9, -99, 999...) in a column of text.
``sentinel``
    A number made of 9s (-9, -99, -999, 99, 999, 9999...) that lies outside the range of
    the column's other values and more than ``threshold`` robust standard deviations
    (1.4826 MAD) from their median.
``zero``
    Zeros in a column whose other values are all positive and stay well away from zero
    (smallest positive value at least a tenth of the median and twice the data's
    resolution), such as a blood pressure of 0. Counts, where 1 is common, are left alone.
``negative``
    The one negative integer in an otherwise non-negative column (e.g. -1 for an age),
    when it occurs at least twice or is -1.
``outlier``
    A value repeated at least 3 times (and 1% of rows) that lies outside the range of the
    other values and more than ``threshold`` robust standard deviations from their median.

Nothing is applied behind your back: the result is a report (:meth:`Detection.report`)
and a machine-readable structure (:meth:`Detection.to_dict`, JSON) that you can edit
(:meth:`Detection.drop`, :meth:`Detection.add`) before :meth:`Detection.apply` turns the
markers into missing cells.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataTypeError, UnknownColumnError
from .io import default_na_counts, infer_types, mark_default_na, read_raw, table_format
from .tabular import NUMERIC_SHARE

#: Strings that mean "missing", compared after ``strip()`` and ``casefold()``.
STRING_MARKERS = (
    "na",
    "n/a",
    "#n/a",
    "n.a.",
    "null",
    "none",
    "nothing",
    "nan",
    "nil",
    "?",
    "-",
    "--",
    "missing",
    "undefined",
)

KINDS = (
    "empty",
    "whitespace",
    "string",
    "text_in_numeric",
    "number_in_text",
    "sentinel",
    "zero",
    "negative",
    "outlier",
    "user",
)

_BOOL_WORDS = {"true", "false"}
_MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class Marker:
    """A value that stands for "missing" in one column."""

    value: str | int | float  #: exactly as found: a string token, or a number
    count: int  #: cells holding it
    kind: str  #: one of :data:`KINDS`
    reason: str  #: why it looks like a missing-value marker


@dataclass
class ColumnReport:
    """What :func:`detect` found in one column."""

    name: Hashable
    type: str  #: "numeric", "integer", "boolean", "text" or "empty", markers left out
    n_rows: int
    n_null: int  #: cells missing already (NaN, None, NA)
    markers: list[Marker] = field(default_factory=list)

    @property
    def n_marked(self) -> int:
        """Cells the markers would make missing."""
        return sum(m.count for m in self.markers)

    @property
    def n_missing(self) -> int:
        """Missing cells once the markers are applied."""
        return self.n_null + self.n_marked


def _is_sentinel_pattern(v: float) -> bool:
    """-9, -99, -999..., or 99, 999, 9999...: numbers written with 9s only."""
    if not float(v).is_integer() or v == 0:
        return False
    digits = str(abs(int(v)))
    return set(digits) == {"9"} and (v < 0 or len(digits) >= 2)


def _is_placeholder_number(v: float) -> bool:
    return v in (0, -1) or _is_sentinel_pattern(v)


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    med = float(np.median(values))
    scale = _MAD_TO_SD * float(np.median(np.abs(values - med)))
    if scale == 0.0:  # over half the values equal: fall back to the standard deviation
        scale = float(np.std(values))
    return med, scale


def _numeric_markers(numbers: np.ndarray, threshold: float, enabled: set[str]) -> list[Marker]:
    """Sentinel, zero, negative and outlier markers among a column's numbers."""
    if numbers.size == 0:
        return []
    distinct, counts = np.unique(numbers, return_counts=True)
    if distinct.size < 3:  # binary or constant columns: nothing is "far" from anything
        return []
    patterned = np.array([_is_sentinel_pattern(v) for v in distinct])
    base = numbers[~np.isin(numbers, distinct[patterned])]
    if base.size < 3:
        base = numbers
    med, scale = _robust_center_scale(base)
    n = numbers.size
    out: list[Marker] = []

    def outside(v: float) -> tuple[bool, float, float, float]:
        others = distinct[distinct != v]
        lo, hi = float(others.min()), float(others.max())
        z = abs(v - med) / scale if scale > 0 else math.inf
        return (v < lo or v > hi) and z > threshold, z, lo, hi

    positives = distinct[distinct > 0]
    for v, count in zip(distinct.tolist(), counts.tolist(), strict=True):
        v = int(v) if float(v).is_integer() else v  # -999, not -999.0, in reports and JSON
        if "sentinel" in enabled and _is_sentinel_pattern(v):
            far, z, lo, hi = outside(v)
            if far:
                side = "below" if v < med else "above"
                out.append(
                    Marker(
                        v,
                        count,
                        "sentinel",
                        f"a 9s placeholder {z:.0f} robust SDs {side} the median ({med:g}), "
                        f"outside the other values [{lo:g}, {hi:g}]",
                    )
                )
                continue
        if "zero" in enabled and v == 0 and (distinct >= 0).all() and positives.size >= 2:
            step = float(np.diff(positives).min())
            smallest, pos_med = float(positives.min()), float(np.median(numbers[numbers > 0]))
            if smallest >= max(2 * step, 0.1 * pos_med):
                out.append(
                    Marker(
                        v,
                        count,
                        "zero",
                        f"zero where every other value is positive and none comes near it "
                        f"(smallest {smallest:g}, median {pos_med:g})",
                    )
                )
                continue
        if "negative" in enabled and v < 0 and float(v).is_integer():
            if (distinct[distinct != v] >= 0).all() and (count >= 2 or v == -1):
                out.append(
                    Marker(
                        v,
                        count,
                        "negative",
                        "the only negative value in a column of non-negative numbers",
                    )
                )
                continue
        if "outlier" in enabled and count >= max(3, 0.01 * n) and v in (distinct[0], distinct[-1]):
            far, z, lo, hi = outside(v)
            if far:
                out.append(
                    Marker(
                        v,
                        count,
                        "outlier",
                        f"repeated {count} times, {z:.0f} robust SDs from the median "
                        f"({med:g}), outside the other values [{lo:g}, {hi:g}]",
                    )
                )
    return out


def _scan_column(
    series: pd.Series, markers: set[str], threshold: float, enabled: set[str]
) -> ColumnReport:
    null = series.isna().to_numpy()
    report = ColumnReport(series.name, "text", len(series), int(null.sum()))
    values = series[~null]
    if pd.api.types.is_bool_dtype(series.dtype):
        report.type = "boolean" if len(values) else "empty"
        return report
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = values.to_numpy(dtype=np.float64)
        report.markers = _numeric_markers(numbers[np.isfinite(numbers)], threshold, enabled)
        flagged = np.isin(numbers, [m.value for m in report.markers])
        integer = pd.api.types.is_integer_dtype(series.dtype)
        report.type = ("integer" if integer else "numeric") if (~flagged).any() else "empty"
        return report

    obj = values.astype(object)
    is_str = obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    strings = obj[is_str]
    stripped = strings.str.strip()
    found: list[Marker] = []
    taken = np.zeros(len(obj), dtype=bool)

    def add(mask_in_strings: np.ndarray, kind: str, reason: str) -> None:
        hits = strings[mask_in_strings]
        for value, count in hits.value_counts(sort=False).items():
            found.append(Marker(value, int(count), kind, reason))
        taken[np.flatnonzero(is_str)[mask_in_strings]] = True

    if "empty" in enabled:
        add((strings == "").to_numpy(), "empty", "empty string")
    if "whitespace" in enabled:
        add(((stripped == "") & (strings != "")).to_numpy(), "whitespace", "whitespace only")
    if "string" in enabled:
        add(
            stripped.str.casefold().isin(markers).to_numpy() & (stripped != "").to_numpy(),
            "string",
            "a common missing-value marker",
        )
    rest = obj[~taken]
    parsed = pd.to_numeric(
        rest.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce"
    )
    is_num = parsed.notna().to_numpy()
    numbers = None
    if len(rest) and is_num.mean() >= NUMERIC_SHARE:
        numbers = parsed[is_num].to_numpy(dtype=np.float64)
        if "text_in_numeric" in enabled:
            for value, count in rest[~is_num].value_counts(sort=False).items():
                found.append(
                    Marker(
                        value,
                        int(count),
                        "text_in_numeric",
                        f"text in a column whose other values ({is_num.mean():.0%}) are numbers",
                    )
                )
        numeric = _numeric_markers(numbers[np.isfinite(numbers)], threshold, enabled)
        found.extend(numeric)
        flagged = np.isin(numbers, [m.value for m in numeric])
        left = rest[is_num][~flagged].astype(str).str.strip()
        if not len(left):
            report.type = "empty"
        else:
            report.type = "integer" if left.str.match(r"^[+-]?\d+$").all() else "numeric"
    else:
        if "number_in_text" in enabled and len(rest) and is_num.any():
            for value, count in rest[is_num].value_counts(sort=False).items():
                number = float(pd.to_numeric(str(value).strip()))
                if _is_placeholder_number(number):
                    found.append(
                        Marker(
                            value,
                            int(count),
                            "number_in_text",
                            "a placeholder number in a column of text",
                        )
                    )
        dropped = {m.value for m in found if m.kind == "number_in_text"}
        left = rest[~rest.isin(dropped)]
        words = {str(v).strip().casefold() for v in left}
        report.type = "empty" if not len(left) else "boolean" if words <= _BOOL_WORDS else "text"
    report.markers = found
    return report


@dataclass
class Detection:
    """The result of :func:`detect`: per-column reports, editable, JSON-ready."""

    columns: list[ColumnReport]
    n_rows: int
    source: str | None = None
    #: ``{column: {token: cells}}``: what reading the file set missing by default (pandas'
    #: NA tokens, empty and blank cells; :func:`revml.io.read_raw`), counted in ``n_null``.
    read_as_missing: dict[Hashable, dict[str, int]] = field(default_factory=dict)

    def __getitem__(self, name: Hashable) -> ColumnReport:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"no column {name!r} in this detection")

    @property
    def missing_values(self) -> dict[Hashable, list]:
        """``{column: [marker values]}`` for the columns with markers."""
        return {c.name: [m.value for m in c.markers] for c in self.columns if c.markers}

    # ------------------------------------------------------------------ editing
    def drop(self, column: Hashable, value: Any = ..., kind: str | None = None) -> Detection:
        """A copy without ``column``'s marker ``value`` (all its markers if omitted), or
        without its markers of one ``kind``."""
        target = self[column]
        keep = [
            m
            for m in target.markers
            if not ((value is ... or m.value == value) and (kind is None or m.kind == kind))
        ]
        if len(keep) == len(target.markers):
            raise KeyError(f"column {column!r} has no such marker ({value!r}, kind={kind!r})")
        return self._with(column, keep)

    def add(self, column: Hashable, value: str | int | float, reason: str = "") -> Detection:
        """A copy where ``value`` also marks missing cells of ``column``."""
        target = self[column]
        marker = Marker(value, 0, "user", reason or "given by the user")
        return self._with(column, [*[m for m in target.markers if m.value != value], marker])

    def _with(self, column: Hashable, markers: list[Marker]) -> Detection:
        columns = [replace(c, markers=markers) if c.name == column else c for c in self.columns]
        return replace(self, columns=columns)

    # ------------------------------------------------------------------ applying
    def apply(self, data: pd.DataFrame, *, convert: bool = True) -> pd.DataFrame:
        """A copy of ``data`` with every marker's cells set missing.

        String markers match cells holding exactly that string; numeric markers match
        cells equal to that number (also when written as text, e.g. "-999.0"). With
        ``convert``, text columns that lost markers are then typed from what is left
        (:func:`revml.io.infer_types`): a column of numbers and "N/A" becomes numeric.
        """
        return apply_markers(data, self.missing_values, convert=convert)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        """JSON-ready: ``{"source", "n_rows", "columns": [...], "read_as_missing": [...]}``."""
        cols = []
        for c in self.columns:
            d = asdict(c)
            d["n_missing"] = c.n_missing
            cols.append(d)
        # A list, not a mapping: column labels need not be strings.
        read = [{"name": k, "values": dict(v)} for k, v in self.read_as_missing.items()]
        return {
            "source": self.source,
            "n_rows": self.n_rows,
            "columns": cols,
            "read_as_missing": read,
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The JSON text of :meth:`to_dict`; also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: Mapping) -> Detection:
        """Rebuild a detection from :meth:`to_dict` (e.g. after editing its JSON)."""
        try:
            columns = [
                ColumnReport(
                    name=c["name"],
                    type=c.get("type", "text"),
                    n_rows=int(c.get("n_rows", 0)),
                    n_null=int(c.get("n_null", 0)),
                    markers=[
                        Marker(
                            m["value"],
                            int(m.get("count", 0)),
                            m.get("kind", "user"),
                            m.get("reason", ""),
                        )
                        for m in c.get("markers", [])
                    ],
                )
                for c in data["columns"]
            ]
            read = {
                r["name"]: {str(k): int(v) for k, v in r["values"].items()}
                for r in data.get("read_as_missing", [])
            }
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(f"not a revml detection: missing or malformed entry {err}") from None
        for col in columns:
            for m in col.markers:
                if not isinstance(m.value, str | int | float) or isinstance(m.value, bool):
                    raise ValueError(
                        f"column {col.name!r}: marker value {m.value!r} must be a string or "
                        "a number"
                    )
        return cls(columns, int(data.get("n_rows", 0)), data.get("source"), read)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Detection:
        """Read a detection written by :meth:`to_json`."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data)

    def report(self) -> str:
        """A readable report: per column, the markers with counts and reasons."""
        where = f" in {self.source}" if self.source else ""
        flagged = [c for c in self.columns if c.markers]
        lines = [
            f"Missing-value markers{where}: {self.n_rows} rows, {len(self.columns)} columns, "
            f"{len(flagged)} with markers"
        ]
        if self.read_as_missing:
            total = sum(sum(v.values()) for v in self.read_as_missing.values())
            lines.append("")
            lines.append(
                f"Read as missing already: {total} cells (pandas' default NA tokens, empty or "
                "blank; --no-default-na keeps them as data)"
            )
            width = max(len(str(name)) for name in self.read_as_missing)
            for name, tokens in self.read_as_missing.items():
                found = ", ".join(f"{_fmt(t)} x{n}" for t, n in tokens.items())
                lines.append(f"    {name!s:<{width}}  {found}")
        clean = []
        for col in self.columns:
            if not col.markers:
                clean.append(col)
                continue
            null = f", {col.n_null} missing already" if col.n_null else ""
            lines.append("")
            lines.append(
                f"{col.name} ({col.type}{null}): {col.n_marked} more cells would be missing"
            )
            width = max(len(_fmt(m.value)) for m in col.markers)
            for m in col.markers:
                lines.append(f"    {_fmt(m.value):<{width}}  x{m.count:<5} {m.kind}: {m.reason}")
        if clean:
            lines.append("")
            lines.append(
                "No markers in: "
                + ", ".join(
                    f"{c.name} ({c.type}" + (f", {c.n_null} missing" if c.n_null else "") + ")"
                    for c in clean
                )
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{value!r} is not JSON serialisable")


def _matches(series: pd.Series, value: Any) -> np.ndarray:
    obj = series.astype(object)
    if isinstance(value, str):
        return obj.map(lambda v: isinstance(v, str) and v == value).to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.zeros(len(series), dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return (series == value).fillna(False).to_numpy(dtype=bool)
    numbers = pd.to_numeric(
        obj.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce"
    )
    return (numbers == value).fillna(False).to_numpy(dtype=bool)


def _per_column(data: pd.DataFrame, markers: Any) -> dict[Hashable, list]:
    if isinstance(markers, Detection):
        markers = markers.missing_values
    if isinstance(markers, str) or not isinstance(markers, Mapping | Iterable):
        raise DataTypeError(
            "markers must be a Detection, a {column: [values]} mapping or a list of values"
        )
    if not isinstance(markers, Mapping):
        values = list(markers)
        return {name: values for name in data.columns}
    unknown = [name for name in markers if name not in data.columns]
    if unknown:
        raise UnknownColumnError(f"markers name columns that are not in the data: {unknown}")
    return {name: list(values) for name, values in markers.items()}


def count_markers(data: pd.DataFrame, markers: Any) -> dict[Hashable, dict[Any, int]]:
    """How many cells of each column each marker matches (see :func:`apply_markers`)."""
    return {
        name: {value: int(_matches(data[name], value).sum()) for value in values}
        for name, values in _per_column(data, markers).items()
    }


def apply_markers(
    data: pd.DataFrame,
    markers: Mapping[Hashable, Iterable] | Iterable | Detection,
    *,
    convert: bool = True,
) -> pd.DataFrame:
    """A copy of ``data`` with marker cells set missing.

    ``markers`` is a :class:`Detection`, a ``{column: [values]}`` mapping, or a list of
    values applied to every column. See :meth:`Detection.apply` for matching and
    ``convert``.

    Examples
    --------
    >>> df = pd.DataFrame({"age": ["41", "-999", "N/A", "30"], "city": ["Oslo", "?", "Rome", ""]})
    >>> apply_markers(df, {"age": [-999, "N/A"], "city": ["?", ""]})
        age  city
    0    41  Oslo
    1  <NA>   NaN
    2  <NA>  Rome
    3    30   NaN
    """
    markers = _per_column(data, markers)
    out = data.copy()
    changed = []
    for name, values in markers.items():
        j = data.columns.get_loc(name)
        series = data.iloc[:, j]
        hit = np.zeros(len(series), dtype=bool)
        for value in values:
            hit |= _matches(series, value)
        if hit.any():
            if pd.api.types.is_integer_dtype(series.dtype) and isinstance(series.dtype, np.dtype):
                series = series.astype("Int64")
            elif series.dtype == np.dtype(bool):
                series = series.astype("boolean")
            out.isetitem(j, series.mask(hit))
            changed.append(name)
    if convert and changed:
        out = infer_types(out, columns=changed)
    return out


def detect(
    data: pd.DataFrame | str | os.PathLike,
    *,
    markers: Iterable[str] = STRING_MARKERS,
    threshold: float = 5.0,
    kinds: Iterable[str] = KINDS,
    keep_default_na: bool = True,
) -> Detection:
    """Scan a table for values that stand for "missing"; see the module docstring.

    Parameters
    ----------
    data : pandas.DataFrame or path
        A DataFrame, scanned as it is, or a CSV/TSV/Parquet file. A CSV/TSV file is read
        as text, as :func:`revml.io.read_raw` reads it: cells pandas reads as missing (its
        NA tokens, empty and blank cells) are missing already and listed in
        :attr:`Detection.read_as_missing`; every other token is scanned as written.
    markers : iterable of str
        String markers, compared case-insensitively after stripping whitespace.
    threshold : float
        Robust standard deviations from the median beyond which a sentinel or repeated
        extreme value counts as a marker.
    kinds : iterable of str
        Which kinds of markers to look for (default: all, see :data:`KINDS`).
    keep_default_na : bool
        For a CSV/TSV file: ``False`` keeps pandas' NA tokens and blank cells as data, to
        be scanned like any other token (only empty fields are missing then).

    Returns
    -------
    Detection

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> bp = rng.normal(72, 8, 200).round()
    >>> bp[:12] = 0
    >>> age = rng.integers(20, 80, 200).astype(object)
    >>> age[:5] = -999
    >>> age[5:8] = "N/A"
    >>> found = detect(pd.DataFrame({"bp": bp, "age": age}))
    >>> found.missing_values
    {'bp': [0], 'age': ['N/A', -999]}
    >>> print(found.report().splitlines()[0])
    Missing-value markers: 200 rows, 2 columns, 2 with markers
    """
    source = None
    read_as_missing: dict[Hashable, dict[str, int]] = {}
    if not isinstance(data, pd.DataFrame):
        source = str(data)
        data = read_raw(data, keep_default_na=False)
        if table_format(source) != "parquet":
            if keep_default_na:
                read_as_missing = default_na_counts(data)
                data = mark_default_na(data)
            else:
                # An empty CSV field is missing as the file's writer meant it: count it as
                # missing already, not as a marker to decide on.
                data = data.mask(data.eq(""), None)
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    enabled = set(kinds)
    bad = enabled - set(KINDS)
    if bad:
        raise ValueError(f"unknown marker kinds {sorted(bad)}; expected some of {KINDS}")
    folded = {m.strip().casefold() for m in markers}
    columns = [
        _scan_column(data.iloc[:, j], folded, float(threshold), enabled)
        for j in range(data.shape[1])
    ]
    return Detection(columns, len(data), source, read_as_missing)
