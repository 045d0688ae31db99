"""Reading and writing tables (CSV, TSV, Parquet) without guessing what is missing.

pandas' ``read_csv`` turns about twenty strings ("NA", "null", "n/a", ...) into NaN on its
own. revml reads CSV files as text instead (:func:`read_raw`), so that every token is
visible to :mod:`revml.detect`; only an empty field is missing, as CSV writers mean it.
Markers found by the detector, or given by the user, are applied explicitly, and
:func:`infer_types` then types each text column from its remaining tokens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst")
_INT = re.compile(r"^[+-]?\d+$")
_TRUE = {"true"}
_FALSE = {"false"}


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
        raise ImportError("Parquet files need pyarrow: pip install pyarrow") from None


def read_raw(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table as it is written: CSV/TSV cells as strings, nothing turned into NaN.

    Parquet files are typed already and read as they are.
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if fmt == "parquet":
        _parquet_engine_check()
        return pd.read_parquet(path)
    try:
        return pd.read_csv(
            path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: no header, no rows") from None


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
        raise FileNotFoundError(f"the folder {path.parent} does not exist")
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


def iter_raw(path: str | os.PathLike, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """:func:`read_raw` in chunks of at most ``chunk_rows`` rows, with bounded memory.

    CSV/TSV cells are strings exactly as :func:`read_raw` reads them; Parquet record
    batches keep the file's types. Each chunk's index holds its rows' positions in the file.
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
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
    try:
        reader = pd.read_csv(
            path,
            sep="\t" if fmt == "tsv" else ",",
            dtype=str,
            keep_default_na=False,
            chunksize=chunk_rows,
        )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: no header, no rows") from None
    with reader:
        for chunk in reader:
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield chunk
