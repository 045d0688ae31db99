"""Imputing a file larger than memory, in chunks, with a checkpoint that survives crashes.

:func:`impute_file` reads the input in chunks of ``chunk_rows`` rows (CSV/TSV through
``pandas.read_csv(chunksize=...)`` as text, Parquet through
``pyarrow.parquet.ParquetFile.iter_batches``), imputes each chunk with its global
``row_offset`` (so every row gets the per-sample randomness it would get in one call on the
whole table), and writes each imputed chunk as a part file. The parts are then concatenated
into the output through a temporary file and one ``os.replace``: a crash never leaves a
partial table under the output's name. Peak memory is one chunk, not the file.

With a checkpoint folder the parts live there, each written atomically, next to a
``manifest.json`` naming the job (source path, size, mtime, a hash of its first MiB,
``chunk_rows``, the model's fingerprint, the markers, the output format). Started again with
the same arguments after a crash (even SIGKILL), the job skips the parts already written
and produces the same bytes as an uninterrupted run. A part file exists under its final
name only once it is complete, so the part files themselves are the progress record.

Every chunk is typed with the model's schema (:func:`conform`), not from its own tokens: an
integer column whose chunk happens to have no missing cell, or only missing cells, is
written exactly like the other chunks.

An imputer with ``n_restarts >= 2`` can also write the per-cell spread over its restarts
(:func:`spread_table`) to a second file, through part files of its own: the restarts are
keyed by global row number like the dropout, so chunked and in-memory spreads agree too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import MissingFileError
from .io import infer_types, iter_raw, table_format

if TYPE_CHECKING:
    from .imputer import ReverseImputer
    from .tabular import TabularEncoder

MANIFEST = "manifest.json"
#: 2: the job records how CSV/TSV cells were read (``keep_default_na``).
MANIFEST_VERSION = 2


def model_fingerprint(imp: ReverseImputer) -> str:
    """SHA-256 of what decides an imputer's output: its parameters and its whole fitted
    state (:meth:`revml.state.FittedState.fingerprint`)."""
    h = hashlib.sha256()
    params = imp.get_params(deep=False)
    params.pop("verbose", None)
    params.pop("autoencoder", None)
    h.update(repr(sorted((k, repr(v)) for k, v in params.items())).encode())
    h.update(imp.state_.fingerprint().encode())
    return h.hexdigest()


def _source_identity(src: Path) -> dict:
    stat = src.stat()
    with open(src, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return {
        "path": str(src.resolve()),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256_first_mib": head,
    }


def conform(frame: pd.DataFrame, encoder: TabularEncoder) -> pd.DataFrame:
    """Type the model's columns of a chunk by the model's schema, not by the chunk's tokens.

    Numeric columns become ``float64``, integer ones ``Int64``, boolean ones ``boolean``;
    categorical cells are mapped onto the fitted categories by their text, so ``"3"`` in a
    chunk matches the category ``3`` of a column fitted as numbers. A cell that does not
    fit its column's kind raises, as it would in one call on the whole table.
    """
    out = frame.copy()
    for spec in encoder.specs_:
        j = out.columns.get_loc(spec.name)
        series = out.iloc[:, j]
        if spec.kind in ("numeric", "integer", "empty"):
            if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
                series.dtype
            ):
                obj = series.astype(object)
                miss = obj.isna().to_numpy()
                values = pd.to_numeric(obj.where(~miss, None), errors="coerce")
                bad = values.isna().to_numpy() & ~miss
                if bad.any():
                    raise ValueError(
                        f"column {spec.name!r} is {spec.kind} in the model but row "
                        f"{series.index[bad][0]} holds {obj[bad].iloc[0]!r}; mark such values "
                        "missing (--missing-values)"
                    )
                series = values
            target = "Int64" if spec.kind == "integer" else np.float64
            if spec.kind == "integer":
                series = series.astype(np.float64)  # Int64 from floats that are integral
            out.isetitem(j, series.astype(target))
        elif spec.kind == "boolean":
            obj = series.astype(object)
            text = obj.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
            flags = text.map(lambda v: {"true": True, "false": False}.get(v, v))
            out.isetitem(j, flags.astype("boolean"))
        else:
            out.isetitem(j, _as_categories(series, spec.categories or []))
    return out


def _as_categories(series: pd.Series, categories: list) -> pd.Series:
    by_text = {str(c): c for c in categories}
    obj = series.astype(object)
    miss = obj.isna().to_numpy()
    values = [
        None if m else by_text.get(str(v), by_text.get(str(v).strip(), v))
        for v, m in zip(obj.tolist(), miss, strict=True)
    ]
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def _canonical_output(filled: pd.DataFrame, encoder: TabularEncoder) -> pd.DataFrame:
    """Imputed chunks' dtypes fixed by the model: every chunk writes its cells the same way."""
    for spec in encoder.specs_:
        j = filled.columns.get_loc(spec.name)
        series = filled.iloc[:, j]
        if spec.kind == "integer" and not series.isna().any():
            filled.isetitem(j, series.astype(np.int64))
        elif spec.kind == "boolean" and not series.isna().any():
            filled.isetitem(j, series.astype(bool))
        elif spec.kind in ("numeric", "empty"):
            filled.isetitem(j, series.astype(np.float64))
    return filled


def prepare_chunk(
    raw: pd.DataFrame, fmt: str, markers: Any, encoder: TabularEncoder | None
) -> pd.DataFrame:
    """A raw chunk as ``revml impute`` types a whole table: empty CSV fields and the
    markers set missing, text typed (:func:`revml.io.infer_types`), then :func:`conform`.
    """
    from .detect import apply_markers

    frame = raw
    if fmt != "parquet":
        empty = frame.eq("")
        if empty.to_numpy().any():
            frame = frame.mask(empty, None)
    if markers:
        frame = apply_markers(frame, markers)
    frame = infer_types(frame)
    return frame if encoder is None else conform(frame, encoder)


def spread_table(frame: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    """The spread of every cell of ``frame``, for writing beside the completed table.

    Columns of ``std`` (the imputer's, from ``transform(..., return_std=True)``) are taken
    from it; the others, copied unchanged by ``revml impute``, are 0 where observed and
    NaN where missing (nothing imputed, no spread).
    """
    out = pd.DataFrame(
        np.where(frame.isna().to_numpy(), np.nan, 0.0), index=frame.index, columns=frame.columns
    )
    for name in std.columns:
        out[name] = std[name].to_numpy(dtype=np.float64)
    return out


def impute_chunk(
    imp: ReverseImputer, raw: pd.DataFrame, fmt: str, markers: Any = None, *, spread: bool = False
) -> tuple[pd.DataFrame, int, int, pd.DataFrame | None]:
    """Impute one raw chunk whose index holds its global row numbers.

    Returns the completed chunk (all columns, model's columns filled), the number of missing
    cells before and after, and with ``spread=True`` the chunk's :func:`spread_table`
    (``None`` otherwise; it needs ``imp.n_restarts >= 2``).
    """
    encoder = imp.encoder_
    columns = list(encoder.columns_)
    absent = [c for c in columns if c not in raw.columns]
    if absent:
        raise ValueError(f"the table lacks columns the model was fitted on: {absent}")
    frame = prepare_chunk(raw, fmt, markers, encoder)
    part = frame[columns].reset_index(drop=True)
    before = int(part.isna().to_numpy().sum())
    details = imp.transform_details(part, row_offset=int(raw.index[0]))
    filled = _canonical_output(details.X, encoder)
    result = frame.copy()
    for name in columns:
        result[name] = filled[name].to_numpy()
    after = int(filled.isna().to_numpy().sum())
    std = None
    if spread:
        if details.std is None:
            raise ValueError(
                "the spread over restarts needs an imputer with n_restarts >= 2 and "
                "strategy='reverse'"
            )
        std = spread_table(frame, details.std.set_axis(frame.index))
    return pd.DataFrame(result, columns=frame.columns), before, after, std


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _part_name(i: int, fmt: str, kind: str = "part") -> str:
    return f"{kind}-{i:06d}.{'parquet' if fmt == 'parquet' else fmt}"


def _write_part(chunk: pd.DataFrame, path: Path, fmt: str, header: bool) -> None:
    if fmt == "parquet":
        _atomic_write(path, lambda p: chunk.to_parquet(p, index=False))
    else:
        sep = "\t" if fmt == "tsv" else ","
        _atomic_write(path, lambda p: chunk.to_csv(p, sep=sep, index=False, header=header))


def _merge(parts: list[Path], dst: Path, fmt: str) -> None:
    """Concatenate the part files into ``dst`` (atomically); memory stays one part."""

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            writer = None
            try:
                for part in parts:
                    table = pq.read_table(part)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    elif table.schema != writer.schema:
                        table = table.cast(writer.schema)
                    writer.write_table(table)
            finally:
                if writer is not None:
                    writer.close()
        else:
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)

    _atomic_write(dst, write)


def _markers_json(markers: Any) -> Any:
    if markers is None:
        return None
    if isinstance(markers, dict):
        return {str(k): [repr(v) for v in vs] for k, vs in markers.items()}
    return [repr(v) for v in markers]


def _check_manifest(folder: Path, job: dict) -> None:
    path = folder / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        if old != job:
            diff = sorted(k for k in set(old) | set(job) if old.get(k) != job.get(k))
            raise ValueError(
                f"the checkpoint folder {folder} belongs to a different job (differs in "
                f"{', '.join(diff)}): delete it, or pass another --checkpoint folder"
            )
        return
    _atomic_write(path, lambda p: p.write_text(json.dumps(job, indent=1) + "\n"))


def impute_file(
    imp: ReverseImputer,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    chunk_rows: int,
    checkpoint_dir: str | os.PathLike | None = None,
    *,
    markers: Any = None,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    log: Callable[[str], None] | None = None,
    std_dst: str | os.PathLike | None = None,
    keep_default_na: bool = True,
) -> dict:
    """Impute the table ``src`` chunk by chunk into ``dst`` with bounded memory.

    Parameters
    ----------
    imp : ReverseImputer
        Fitted on a DataFrame (its column encoder gives every chunk the same schema).
    src, dst : path
        CSV, TSV or Parquet, by extension (``dst`` uncompressed).
    chunk_rows : int
        Rows per chunk; peak memory grows with it, results do not depend on it (up to
        float rounding of different batch shapes).
    checkpoint_dir : path, optional
        Keep the imputed parts and a manifest here; a rerun with the same arguments resumes.
        Without it the parts go to a temporary folder beside ``dst``, removed at the end.
    markers : list or dict, optional
        Missing-value markers, as for :func:`revml.detect.apply_markers`.
    rank, world_size, barrier :
        Distributed runs (:mod:`revml.distributed`): rank ``r`` imputes chunks ``i`` with
        ``i % world_size == r``; after ``barrier()`` rank 0 merges. All ranks must see the
        same ``checkpoint_dir`` (a shared filesystem across nodes).
    log : callable, optional
        Progress messages.
    std_dst : path, optional
        Also write the per-cell spread over the imputer's restarts here
        (:func:`spread_table`; needs ``imp.n_restarts >= 2``), same layout as ``dst``.
    keep_default_na : bool
        Read pandas' default NA tokens (and blank cells) of a CSV/TSV ``src`` as missing,
        as :func:`revml.io.read_raw` does (False: only empty fields).

    Returns
    -------
    dict
        ``rows``, ``chunks``, ``chunks_skipped`` (resumed), ``missing_before``,
        ``missing_after``, ``seconds`` (this rank's counts for the first three of these).

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, os
    >>> from revml import ReverseImputer
    >>> df = pd.DataFrame({"a": [1.0, 2.0, None, 4.0] * 5, "b": [2.0, None, 6.0, 8.0] * 5})
    >>> imp = ReverseImputer(random_state=0, epochs=2, n_steps=5, hidden=(8,), bottleneck=2)
    >>> imp = imp.fit(df)
    >>> d = tempfile.mkdtemp()
    >>> df.to_csv(os.path.join(d, "in.csv"), index=False)
    >>> stats = impute_file(imp, os.path.join(d, "in.csv"), os.path.join(d, "out.csv"), 8)
    >>> stats["rows"], stats["chunks"], stats["missing_after"]
    (20, 3, 0)
    """
    t0 = time.perf_counter()
    if imp.encoder_ is None:
        raise ValueError("chunked imputation needs an imputer fitted on a table (DataFrame)")
    src, dst = Path(src), Path(dst)
    fmt_in, fmt_out = table_format(src), table_format(dst)
    outputs = [dst] if std_dst is None else [dst, Path(std_dst)]
    for path in outputs:
        if "".join(path.suffixes).lower().endswith((".gz", ".bz2", ".zip", ".xz", ".zst")):
            raise ValueError(f"chunked output cannot be compressed: write {path.stem} instead")
        if not path.parent.exists():
            raise MissingFileError(f"the folder {path.parent} does not exist")
    fmt_std = None if std_dst is None else table_format(std_dst)
    if fmt_std is not None and int(imp.n_restarts) < 2:
        raise ValueError(
            f"the spread over restarts needs n_restarts >= 2; this imputer has {imp.n_restarts}"
        )
    say = log or (lambda msg: None)
    temporary = checkpoint_dir is None
    if temporary:
        # The same name on every rank, so that rank 0 finds the others' parts.
        folder = dst.with_name(f".{dst.name}.parts")
        if world_size == 1:
            folder = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    else:
        folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    job = {
        "format": "revml.impute_file",
        "version": MANIFEST_VERSION,
        "source": _source_identity(src),
        "chunk_rows": int(chunk_rows),
        "model": model_fingerprint(imp),
        "markers": _markers_json(markers),
        "keep_default_na": bool(keep_default_na),
        "output_format": fmt_out,
    }  # not the number of processes: a job may resume on more or fewer ranks
    if fmt_std is not None:
        job["std_output_format"] = fmt_std
    if rank == 0:
        _check_manifest(folder, job)
    if barrier is not None:
        barrier()
    if rank != 0:
        _check_manifest(folder, job)
    stats = {"rows": 0, "chunks": 0, "chunks_skipped": 0, "missing_before": 0}
    stats["missing_after"] = 0
    n_chunks = 0
    try:
        for i, raw in enumerate(iter_raw(src, chunk_rows, keep_default_na=keep_default_na)):
            n_chunks += 1
            if i % world_size != rank:
                continue
            part = folder / _part_name(i, fmt_out)
            if part.is_file():
                stats["chunks_skipped"] += 1
                continue
            spread = fmt_std is not None
            filled, before, after, std = impute_chunk(imp, raw, fmt_in, markers, spread=spread)
            if spread:  # before the table's part, whose existence marks the chunk done
                _write_part(std, folder / _part_name(i, fmt_std, "std"), fmt_std, header=i == 0)
            _write_part(filled, part, fmt_out, header=i == 0)
            stats["rows"] += len(raw)
            stats["chunks"] += 1
            stats["missing_before"] += before
            stats["missing_after"] += after
            say(f"chunk {i} (rows {raw.index[0]}-{raw.index[-1]}): {before - after} cells imputed")
        if n_chunks == 0:
            raise ValueError(f"{src} has no data rows")
        if barrier is not None:
            barrier()
        if rank == 0:
            parts = [folder / _part_name(i, fmt_out) for i in range(n_chunks)]
            lost = [p.name for p in parts if not p.is_file()]
            if lost:
                raise RuntimeError(f"parts missing after every rank finished: {lost[:5]}")
            _merge(parts, dst, fmt_out)
            say(f"merged {n_chunks} parts into {dst}")
            if fmt_std is not None:
                std_parts = [folder / _part_name(i, fmt_std, "std") for i in range(n_chunks)]
                _merge(std_parts, Path(std_dst), fmt_std)
                say(f"merged {n_chunks} spread parts into {std_dst}")
        if temporary and barrier is not None:
            barrier()  # nobody still reads the parts
    finally:
        if temporary and rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
    stats["n_chunks"] = n_chunks
    stats["seconds"] = time.perf_counter() - t0
    return stats
