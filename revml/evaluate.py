"""Compare imputers on the same table: hide observed values, impute, score.

:func:`compare` hides a share of the *observed* cells of a table with a mechanism from
:mod:`revml.masks` (or a mask you give), fits and runs every method on the damaged table,
and scores each method on the hidden cells only:

* numeric and integer columns: RMSE and MAE on min-max scaled values (each column divided
  by the range of its observed values), so columns in different units are comparable;
* boolean and categorical columns: accuracy (share of hidden cells given back exactly).

The result is one long :class:`pandas.DataFrame`, a row per (method, column) plus one
``"(all)"`` row per method that pools every hidden cell and carries the run time.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from . import masks
from .baselines import METHODS, make_imputer
from .imputer import ReverseImputer
from .tabular import TabularEncoder, is_dataframe

MECHANISMS = ("mcar", "mar", "mnar")
ALL = "(all)"
COLUMNS = [
    "method",
    "column",
    "kind",
    "n_hidden",
    "rmse",
    "mae",
    "accuracy",
    "n_unfilled",
    "seconds",
]


def as_frame(X: Any) -> pd.DataFrame:
    """A DataFrame view of ``X``: itself, or an array's columns named ``x0, x1, ...``."""
    if is_dataframe(X):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (samples x features), got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])


def numeric_view(frame: pd.DataFrame) -> np.ndarray:
    """Float matrix of the numeric, integer and boolean columns; NaN elsewhere."""
    out = np.full(frame.shape, np.nan)
    for j, name in enumerate(frame.columns):
        series = frame[name]
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def hide(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """A copy of ``frame`` with the cells of ``mask`` set missing.

    Integer and boolean numpy columns become pandas' nullable ``Int64`` / ``boolean``,
    the only way those dtypes can hold a missing cell.
    """
    out = frame.copy()
    for j in np.flatnonzero(mask.any(0)):
        series = frame.iloc[:, j]
        if pd.api.types.is_integer_dtype(series.dtype) and isinstance(series.dtype, np.dtype):
            series = series.astype("Int64")
        elif series.dtype == np.dtype(bool):
            series = series.astype("boolean")
        out.isetitem(j, series.mask(mask[:, j]))
    return out


def make_mask(frame: pd.DataFrame, fraction: float, mechanism: str, seed: int | None) -> np.ndarray:
    """Cells to hide: ``mechanism`` at rate ``fraction``, restricted to observed cells."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism={mechanism!r} is not one of {MECHANISMS}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    if mechanism == "mcar":
        mask = masks.mcar(frame.shape, fraction, seed=rng)
    elif mechanism == "mar":
        mask = masks.mar(numeric_view(frame), fraction, seed=rng)
    else:
        mask = masks.mnar(numeric_view(frame), fraction, seed=rng)
    return mask & ~frame.isna().to_numpy()


def _methods(methods: Any, random_state: int | None, ae_params: Mapping) -> dict[str, Any]:
    if methods is None:
        methods = METHODS
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if isinstance(methods, Mapping):
        return dict(methods)
    if not isinstance(methods, Iterable):
        raise TypeError("methods must be None, a list of method names or a {name: estimator} dict")
    out = {}
    for name in methods:
        out[name] = make_imputer(name, random_state=random_state, **ae_params)
    if not out:
        raise ValueError("no method to compare")
    return out


def _ae_key(est: Any) -> tuple | None:
    """Reverse and direct autoencoder imputers with equal parameters share one fit."""
    if not isinstance(est, ReverseImputer) or est.autoencoder is not None:
        return None
    params = est.get_params(deep=False)
    for name in ("strategy", "verbose", "batch_size", "backend"):
        params.pop(name)
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def compare(
    X: Any,
    methods: Any = None,
    *,
    mask: np.ndarray | None = None,
    fraction: float = 0.2,
    mechanism: str = "mcar",
    seed: int | None = 0,
    ae_params: Mapping | None = None,
    verbose: bool = False,
) -> pd.DataFrame:
    """Hide observed cells of ``X``, impute them with every method, score each method.

    Parameters
    ----------
    X : pandas.DataFrame or array-like
        The table; its missing cells (NaN/None/NA) are left as they are and never scored.
    methods : list of str, dict or None
        Method names from :data:`revml.baselines.METHODS` (default: all of them), or a
        ``{name: unfitted estimator}`` dict of your own.
    mask : bool array of shape X.shape, optional
        The cells to hide, instead of drawing them; must select observed cells only.
    fraction : float
        Share of observed cells to hide (ignored when ``mask`` is given).
    mechanism : {"mcar", "mar", "mnar"}
        How the hidden cells are drawn (:mod:`revml.masks`).
    seed : int or None
        Seeds the mask and every method.
    ae_params : dict, optional
        Extra :class:`~revml.ReverseImputer` parameters for the ``reverse`` and
        ``direct_ae`` methods (e.g. ``{"epochs": 50, "device": "cpu"}``).
    verbose : bool
        A progress bar over the methods (and the autoencoder's own bars).

    Returns
    -------
    pandas.DataFrame
        Columns ``method, column, kind, n_hidden, rmse, mae, accuracy, n_unfilled,
        seconds``: one row per method and column with hidden cells, plus a ``"(all)"``
        row per method pooling all of them. ``rmse``/``mae`` are NaN for categorical
        columns, ``accuracy`` for numeric ones; ``n_unfilled`` counts hidden cells a
        method left missing (scored as wrong, and left out of RMSE/MAE); ``seconds`` is
        fit plus transform (the two autoencoder methods share one fit when their
        parameters agree, and both count it).

    Examples
    --------
    >>> import numpy as np
    >>> from revml.evaluate import compare
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).cumsum(axis=1)
    >>> table = compare(X, ["mean", "knn"], fraction=0.2, seed=0)
    >>> table[table.column == "(all)"].set_index("method")["rmse"].round(3).to_dict()
    {'mean': 0.234, 'knn': 0.151}
    """
    frame = as_frame(X)
    if len(frame) < 2:
        raise ValueError("X needs at least 2 rows to compare imputers")
    observed = ~frame.isna().to_numpy()
    if mask is None:
        mask = make_mask(frame, fraction, mechanism, seed)
    else:
        mask = np.asarray(mask)
        if mask.shape != frame.shape or mask.dtype != bool:
            raise ValueError(f"mask must be a boolean array of shape {frame.shape}")
        if (mask & ~observed).any():
            raise ValueError(
                f"mask selects {int((mask & ~observed).sum())} cell(s) that are already "
                "missing: only observed cells can be hidden and scored"
            )
    if not mask.any():
        raise ValueError("no cell to hide: the mask is empty (raise fraction?)")
    damaged = hide(frame, mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty-column warnings are repeated by every method
        spec = {s.name: s for s in TabularEncoder().fit(frame).specs_}
    estimators = _methods(methods, seed, dict(ae_params or {}))

    rows: list[dict] = []
    fitted_ae: dict[tuple, tuple[ReverseImputer, float]] = {}
    bar = tqdm(estimators.items(), desc="comparing imputers", disable=not verbose, unit="method")
    for name, est in bar:
        bar.set_postfix_str(name)
        key = _ae_key(est)
        t0 = time.perf_counter()
        if key is not None and key in fitted_ae:
            shared, fit_seconds = fitted_ae[key]
            model = copy.copy(shared).set_params(**est.get_params(deep=False))
        else:
            model = clone(est).fit(damaged)
            fit_seconds = time.perf_counter() - t0
            if key is not None:
                fitted_ae[key] = (model, fit_seconds)
            t0 = time.perf_counter()
        filled = model.transform(damaged)
        seconds = fit_seconds + time.perf_counter() - t0
        rows.extend(_score(name, frame, as_frame(filled), mask, spec, seconds))
    return pd.DataFrame(rows, columns=COLUMNS)


def _score(name, truth, filled, mask, spec, seconds) -> list[dict]:
    rows: list[dict] = []
    errors: list[np.ndarray] = []
    hits: list[np.ndarray] = []
    unfilled_total = 0
    for j, column in enumerate(truth.columns):
        m = mask[:, j]
        if not m.any():
            continue
        kind = spec[column].kind
        true = truth.iloc[:, j][m]
        pred = filled.iloc[:, j][m]
        unfilled = pred.isna().to_numpy()
        unfilled_total += int(unfilled.sum())
        row = {"method": name, "column": column, "kind": kind, "n_hidden": int(m.sum())}
        row["n_unfilled"] = int(unfilled.sum())
        if kind in ("numeric", "integer"):
            t = true.to_numpy(dtype=np.float64, na_value=np.nan)
            p = pred.to_numpy(dtype=np.float64, na_value=np.nan)
            span = spec[column].hi - spec[column].lo
            err = ((p - t) / (span if span > 0 else 1.0))[~unfilled]
            errors.append(err)
            row["rmse"] = float(np.sqrt(np.mean(err**2))) if err.size else np.nan
            row["mae"] = float(np.mean(np.abs(err))) if err.size else np.nan
        else:
            hit = np.array(
                [not u and bool(a == b) for a, b, u in zip(true, pred, unfilled, strict=True)],
                dtype=bool,
            )
            hits.append(hit)
            row["accuracy"] = float(hit.mean())
        rows.append(row)
    err = np.concatenate(errors) if errors else np.empty(0)
    hit = np.concatenate(hits) if hits else np.empty(0)
    rows.append(
        {
            "method": name,
            "column": ALL,
            "kind": "all",
            "n_hidden": int(mask.sum()),
            "rmse": float(np.sqrt(np.mean(err**2))) if err.size else np.nan,
            "mae": float(np.mean(np.abs(err))) if err.size else np.nan,
            "accuracy": float(hit.mean()) if hit.size else np.nan,
            "n_unfilled": unfilled_total,
            "seconds": seconds,
        }
    )
    return rows


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method: pooled RMSE, MAE, accuracy, unfilled cells and seconds."""
    out = table[table["column"] == ALL].set_index("method")
    return out[["rmse", "mae", "accuracy", "n_unfilled", "seconds"]]


def per_column(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A (column x method) table of one metric, columns in the table's order."""
    rows = table[(table["column"] != ALL) & table[metric].notna()]
    wide = rows.pivot(index="column", columns="method", values=metric)
    order = list(dict.fromkeys(rows["column"]))
    methods = list(dict.fromkeys(table["method"]))
    return wide.reindex(index=order, columns=[m for m in methods if m in wide.columns])


def format_comparison(table: pd.DataFrame, digits: int = 3) -> str:
    """The comparison as text: the summary, then RMSE and accuracy per column."""
    fmt = f"{{:.{digits}f}}".format
    parts = ["Overall (hidden cells pooled; RMSE/MAE on min-max scaled values):"]
    parts.append(summary(table).to_string(float_format=fmt, na_rep="-"))
    for metric, title in (
        ("rmse", "RMSE per numeric column (scaled to [0, 1]):"),
        ("mae", "MAE per numeric column (scaled to [0, 1]):"),
        ("accuracy", "Accuracy per categorical/boolean column:"),
    ):
        wide = per_column(table, metric)
        if not wide.empty:
            parts += ["", title, wide.to_string(float_format=fmt, na_rep="-")]
    return "\n".join(parts)
