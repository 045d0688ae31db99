"""Reading and writing tables (CSV, TSV, Parquet), missing cells read as the ecosystem does.

CSV and TSV cells are read as text (:func:`read_raw`), and the cells that pandas'
``read_csv`` and R's ``read.csv`` would read as missing are missing here too: an empty
field, one of pandas' default NA tokens (:data:`DEFAULT_NA_VALUES`: "NA", "N/A", "NULL",
"NaN", "None", ...) or a cell of blanks only. ``keep_default_na=False`` (``--no-default-na``
on the command line) keeps the tokens and blanks as data, for tables where "NA" is a value;
only empty fields are missing then.

Everything else stays text, exactly as written, so that :mod:`revml.detect` still sees the
markers only it can judge (-999, "?", a blood pressure of 0). Those are applied
explicitly, and :func:`infer_types` then types each text column from its remaining tokens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MissingDependencyError, MissingFileError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst")
_INT = re.compile(r"^[+-]?\d+$")
_TRUE = {"true"}
_FALSE = {"false"}

#: The strings pandas' ``read_csv`` reads as missing by default (its ``keep_default_na``
#: list, documented under ``na_values`` in the ``pandas.read_csv`` reference), copied
#: because pandas only exposes it privately (``pandas._libs.parsers.STR_NA_VALUES``; a
#: test checks the copy against it). Matched exactly, case and blanks included, as pandas
#: does: " NA" and "na" are data.
DEFAULT_NA_VALUES = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def table_format(path: str | os.PathLike) -> str:
    """``"csv"``, ``"tsv"`` or ``"parquet"`` from the file name (compression suffixes ok).

    Examples
    --------
    >>> table_format("runs/data.csv.gz"), table_format("x.pq")
    ('csv', 'parquet')
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    if not suffixes or suffixes[-1] not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its extension: use .csv, .tsv, "
            ".parquet or .pq (CSV/TSV may add .gz, .bz2, .zip, .xz or .zst)"
        )
    return FORMATS[suffixes[-1]]


def _parquet_engine_check() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError("Parquet files need pyarrow: pip install pyarrow") from None


def _read_text(path: Path, fmt: str, **options) -> pd.DataFrame | Iterator[pd.DataFrame]:
    try:
        return pd.read_csv(
            path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False, **options
        )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: no header, no rows") from None


def default_na_mask(frame: pd.DataFrame) -> np.ndarray:
    """Which cells :func:`read_raw` reads as missing by default, in a table of text.

    A string cell is missing when it is one of :data:`DEFAULT_NA_VALUES` or holds blanks
    only; other cells (numbers, ``None``, NaN) are not counted.

    Examples
    --------
    >>> raw = pd.DataFrame({"a": ["1", "NA", " ", "na"]})
    >>> default_na_mask(raw)[:, 0].tolist()
    [False, True, True, False]
    """
    out = np.zeros(frame.shape, dtype=bool)
    for j in range(frame.shape[1]):
        series = frame.iloc[:, j]
        if not _is_text(series):
            continue
        # Blanks only: a cell that looks empty is empty. pandas keeps " " as text (and then
        # a numeric column becomes text); R reads a blank numeric field as NA, and so do we.
        if isinstance(series.dtype, pd.StringDtype):  # what read_csv gives: vectorised
            hit = series.isin(DEFAULT_NA_VALUES) | series.str.strip().eq("")
            out[:, j] = hit.fillna(False).to_numpy(dtype=bool)
        else:  # object columns may mix strings with other values: only strings count
            out[:, j] = (
                series.astype(object)
                .map(lambda v: isinstance(v, str) and (v in DEFAULT_NA_VALUES or not v.strip()))
                .to_numpy(dtype=bool)
            )
    return out


def default_na_counts(frame: pd.DataFrame) -> dict[Hashable, dict[str, int]]:
    """``{column: {token: cells}}`` for the cells :func:`default_na_mask` marks, by column.

    Examples
    --------
    >>> default_na_counts(pd.DataFrame({"a": ["1", "NA", "", "NA"], "b": ["x", "y", "z", "w"]}))
    {'a': {'NA': 2, '': 1}}
    """
    mask = default_na_mask(frame)
    out: dict[Hashable, dict[str, int]] = {}
    for j in np.flatnonzero(mask.any(axis=0)):
        tokens = frame.iloc[:, j][mask[:, j]].astype(object)
        out[frame.columns[j]] = {str(k): int(v) for k, v in tokens.value_counts().items()}
    return out


def mark_default_na(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a text table with the cells of :func:`default_na_mask` set missing."""
    mask = default_na_mask(frame)
    return frame.mask(mask, None) if mask.any() else frame.copy()


def read_raw(path: str | os.PathLike, *, keep_default_na: bool = True) -> pd.DataFrame:
    """Read a table: CSV/TSV cells as text, the cells pandas reads as missing set missing.

    Parameters
    ----------
    path : path
        A CSV, TSV or Parquet file (by extension; CSV/TSV may be compressed).
    keep_default_na : bool
        As in ``pandas.read_csv``: CSV/TSV cells holding one of :data:`DEFAULT_NA_VALUES`
        (empty fields included) are missing, and so are cells of blanks only. With
        ``False`` every cell is kept as written, empty fields as ``""``. Parquet files are
        typed already and read as they are, either way.

    Returns
    -------
    pandas.DataFrame
        Text columns for CSV/TSV (missing cells NaN); the file's types for Parquet.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("age,city\\n41,NA\\nN/A,Oslo\\n-999, \\n")
    >>> read_raw(path).values.tolist()
    [['41', nan], [nan, 'Oslo'], ['-999', nan]]
    >>> read_raw(path, keep_default_na=False).values.tolist()
    [['41', 'NA'], ['N/A', 'Oslo'], ['-999', ' ']]
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise MissingFileError(f"no such file: {path}")
    if fmt == "parquet":
        _parquet_engine_check()
        return pd.read_parquet(path)
    frame = _read_text(path, fmt)
    return mark_default_na(frame) if keep_default_na else frame


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def infer_types(frame: pd.DataFrame, columns: Iterable[Hashable] | None = None) -> pd.DataFrame:
    """Type text columns from their non-missing tokens; other columns are kept.

    Every token an integer: ``int64`` (``Int64`` if the column has missing cells); every
    token a number: ``float64``; every token true/false (any case): ``bool`` (``boolean``
    with missing cells); anything else stays text. Empty strings count as missing.

    Examples
    --------
    >>> raw = pd.DataFrame({"n": ["1", "", "3"], "x": ["1.5", "2", ""], "s": ["a", "", "b"]})
    >>> infer_types(raw).dtypes.astype(str).tolist()
    ['Int64', 'float64', 'str']
    """
    out = frame.copy()
    names = list(frame.columns) if columns is None else list(columns)
    for name in names:
        j = frame.columns.get_loc(name)
        series = frame.iloc[:, j]
        if not _is_text(series):
            continue
        obj = series.astype(object)
        obj = obj.where(~obj.isin([""]), None)
        missing = obj.isna().to_numpy()
        tokens = obj[~missing]
        if tokens.empty:
            out.isetitem(j, pd.Series(np.nan, index=frame.index, name=name))
            continue
        if not all(isinstance(t, str) for t in tokens):  # Python objects: type by value
            kind = pd.api.types.infer_dtype(tokens, skipna=True)
            target = {
                "integer": "Int64" if missing.any() else np.int64,
                "floating": np.float64,
                "mixed-integer-float": np.float64,
                "boolean": "boolean" if missing.any() else bool,
            }.get(kind)
            if target is not None:
                out.isetitem(
                    j, pd.Series(obj.tolist(), index=frame.index, name=name).astype(target)
                )
            continue
        stripped = tokens.str.strip()
        lowered = set(stripped.str.lower())
        if stripped.str.match(_INT).all():
            values = pd.to_numeric(obj.str.strip(), errors="coerce")
            try:
                typed = values.astype("Int64" if missing.any() else np.int64)
            except (TypeError, ValueError, OverflowError):  # beyond int64: keep as floats
                typed = values.astype(np.float64)
        elif pd.to_numeric(stripped, errors="coerce").notna().all():
            typed = pd.to_numeric(obj.str.strip(), errors="coerce").astype(np.float64)
        elif lowered <= _TRUE | _FALSE:
            flags = obj.str.strip().str.lower().map({"true": True, "false": False})
            typed = flags.astype("boolean" if missing.any() else bool)
        else:
            typed = series.where(~missing, None) if missing.any() else series
        out.isetitem(
            j, pd.Series(typed.to_numpy(), index=frame.index, name=name, dtype=typed.dtype)
        )
    return out


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV, TSV or Parquet, chosen by the file extension."""
    path = Path(path)
    fmt = table_format(path)
    if path.parent and not path.parent.exists():
        raise MissingFileError(f"the folder {path.parent} does not exist")
    # A temporary name beside the target, then one rename: a crash never leaves a partial
    # table under the final name. The temporary name keeps the extensions, so pandas
    # still infers the compression from it.
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        if fmt == "parquet":
            _parquet_engine_check()
            frame.to_parquet(tmp)
        else:
            frame.to_csv(tmp, sep="\t" if fmt == "tsv" else ",", index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def iter_raw(
    path: str | os.PathLike, chunk_rows: int, *, keep_default_na: bool = True
) -> Iterator[pd.DataFrame]:
    """:func:`read_raw` in chunks of at most ``chunk_rows`` rows, with bounded memory.

    CSV/TSV cells are strings exactly as :func:`read_raw` reads them, with the same
    ``keep_default_na``; Parquet record batches keep the file's types. Each chunk's index
    holds its rows' positions in the file.
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise MissingFileError(f"no such file: {path}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    start = 0
    if fmt == "parquet":
        _parquet_engine_check()
        import pyarrow as pa
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(path)
        names = [n for n in reader.schema_arrow.names if not n.startswith("__index_level_")]
        for batch in reader.iter_batches(batch_size=chunk_rows, columns=names):
            chunk = pa.Table.from_batches([batch]).to_pandas()
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield chunk
        return
    reader = _read_text(path, fmt, chunksize=chunk_rows)
    with reader:
        for chunk in reader:
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            # Cell by cell, so a chunk reads exactly as the same rows of the whole table.
            yield mark_default_na(chunk) if keep_default_na else chunk
