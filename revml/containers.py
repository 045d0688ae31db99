"""Containers in and out: arrays, tensors and DataFrames, validated on the way in and
restored to their own type on the way out. Shared by :class:`revml.ReverseImputer` and the
baselines (:mod:`revml.baselines`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .errors import DataError, DataTypeError
from .tabular import TabularEncoder, array_missing_mask, is_dataframe, is_nan_like


def check_2d(shape: tuple, name: str) -> None:
    if len(shape) != 2:
        raise DataError(
            f"{name} must be 2-D (samples x features), got shape {tuple(shape)}. Reshape your "
            "data: X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single sample"
        )


def numeric_array(X: Any, name: str = "X", missing_values: Any = np.nan) -> np.ndarray:
    """``X`` as a float array (float dtypes kept, others float64) with NaN at missing entries.

    Never modifies ``X``; copies only when it has to.
    """
    if sp.issparse(X):
        raise DataTypeError(
            f"sparse input is not supported: {name} is a {type(X).__name__}; missing entries "
            "must be explicit NaN, so convert it with X.toarray()"
        )
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise DataError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind in "OUS":
        if not is_nan_like(missing_values):
            marked = arr == missing_values
            if np.any(marked):
                arr = arr.astype(object)
                arr[marked] = np.nan
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise DataTypeError(
                f"{name} must be numeric (NaN marks missing values); could not convert "
                f"its {arr.dtype} entries to numbers: {err}. Pass a pandas DataFrame for "
                "categorical or string columns"
            ) from None
    if arr.dtype.kind not in "biuf":
        raise DataTypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if not is_nan_like(missing_values) and not isinstance(missing_values, str):
        marked = array_missing_mask(arr, missing_values) & ~np.isnan(arr)
        if marked.any():
            arr = arr.copy()
            arr[marked] = np.nan
    return arr


def as_tensor(X: Any, name: str = "X", missing_values: Any = np.nan) -> torch.Tensor:
    """Validated CPU copy of a 2-D array-like; NaN (and ``missing_values``) mark missing
    entries.

    float64 input stays float64 (so values beyond float32's range, e.g. 1e39, survive until
    they are scaled in float64); every other dtype becomes float32.
    """
    if isinstance(X, torch.Tensor):
        t = X.detach()
        if t.is_complex():
            raise DataError(f"Complex data not supported: {name} has dtype {t.dtype}")
        if t.is_meta:
            raise DataError(f"{name} is a tensor on the 'meta' device: it holds no values")
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
        t = t.to(device="cpu", dtype=dtype)
        if not is_nan_like(missing_values) and not isinstance(missing_values, str):
            t = torch.where(t == float(missing_values), torch.nan, t)
    else:
        arr = numeric_array(X, name, missing_values)
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
        t = torch.from_numpy(np.array(arr, dtype=dtype, order="C"))
    check_2d(tuple(t.shape), name)
    if t.shape[0] == 0:
        raise DataError(f"{name} has no rows")
    if t.shape[1] == 0:
        raise DataError(
            f"{name} has 0 feature(s) (shape={tuple(t.shape)}) while a minimum of 1 is required."
        )
    if torch.isinf(t).any():
        row, col = torch.nonzero(torch.isinf(t))[0].tolist()
        raise DataError(
            f"{name} contains infinite values (first at row {row}, column {col}); only NaN "
            "may mark missing entries"
        )
    return t


def array_spread(imputations: list, miss: torch.Tensor) -> Any:
    """Sample std (``ddof=1``) over the restarts' arrays or tensors; 0 where observed.

    Computed in float64 and returned in the imputations' dtype and container.
    """
    if isinstance(imputations[0], torch.Tensor):
        first = imputations[0]
        stack = torch.stack([t.detach().cpu().double() for t in imputations])
        std = torch.where(miss, stack.std(dim=0, correction=1), 0.0)
        return std.to(device=first.device, dtype=first.dtype)
    stack = np.stack([np.asarray(a, dtype=np.float64) for a in imputations])
    std = np.where(miss.numpy(), stack.std(axis=0, ddof=1), 0.0)
    return std.astype(imputations[0].dtype)


def write_missing(
    X: Any,
    values: torch.Tensor,
    miss: torch.Tensor,
    fallback: Callable[[], torch.Tensor],
    missing_values: Any = np.nan,
) -> Any:
    """A copy of ``X`` with ``values`` (original units) written into its missing entries.

    The last line of defence against silent garbage: a non-finite value for a missing
    entry becomes ``fallback()`` (the column's training mean; with a warning), and imputed
    values are clipped to the finite range of the output dtype (float16 overflows at 65504).
    """
    bad = miss & ~torch.isfinite(values)
    if bad.any():
        warnings.warn(
            f"{int(bad.sum())} imputed value(s) in {int(bad.any(1).sum())} row(s) were not "
            "finite (the autoencoder emitted NaN/inf); they are filled with the column's "
            "training mean instead",
            RuntimeWarning,
            stacklevel=5,
        )
        values = torch.where(bad, fallback(), values)
    if isinstance(X, torch.Tensor):
        out = X.detach().clone()
        if not out.is_floating_point():
            out = out.float()
        big = torch.finfo(out.dtype).max
        fill = values[miss].clamp(-big, big).to(device=out.device, dtype=out.dtype)
        out[miss.to(out.device)] = fill
        return out
    arr = np.asarray(X)
    if arr.dtype.kind in "OUS":
        arr = numeric_array(arr, "X", missing_values)
    out = np.array(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64, copy=True)
    m = miss.numpy()
    big = np.finfo(out.dtype).max
    out[m] = np.clip(values.numpy()[m], -big, big).astype(out.dtype)
    return out


def through_table(
    encoder: TabularEncoder,
    X: Any,
    fn: Callable[[np.ndarray], np.ndarray],
    cells: np.ndarray | None = None,
) -> Any:
    """``fn`` (encoded float matrix -> encoded float matrix) applied to a table.

    A DataFrame comes back as a DataFrame; an array (read as the encoder's columns) as an
    array. ``cells`` are the cells decoded (default: the missing ones).
    """
    frame = X if is_dataframe(X) else encoder._as_frame(X)
    out = encoder.decode(frame, fn(encoder.encode(frame)), cells)
    return out if is_dataframe(X) else out.to_numpy()


def as_frame_of(X: pd.DataFrame, values: Any) -> Any:
    """``values`` (an array, or None) as a DataFrame with ``X``'s index and columns."""
    return None if values is None else pd.DataFrame(values, index=X.index, columns=X.columns)
