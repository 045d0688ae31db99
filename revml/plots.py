"""Pictures: image grids (the seed's figure) and per-column error charts.

Figures are built on :class:`matplotlib.figure.Figure` directly, not through pyplot, so
nothing here touches matplotlib's global backend or leaves figures open.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import MissingDependencyError


def _figure(**kwargs: Any):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "revml's pictures need matplotlib: pip install 'revml[plots]'"
        ) from None
    return Figure(**kwargs)


def image_grid(
    rows: Mapping[str, Any],
    shape: tuple[int, int] = (28, 28),
    n: int = 10,
    path: str | os.PathLike | None = None,
    *,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
    missing_color: str = "tab:red",
):
    """A grid of images: one row per entry of ``rows``, ``n`` images per row.

    Parameters
    ----------
    rows : mapping of str to array of shape (N, H * W) or (N, H, W)
        Row label -> images; NaN pixels (missing) are drawn in ``missing_color``.
    shape : (int, int)
        Height and width of one image.
    n : int
        Images per row (the first ``n``; fewer if a row has fewer).
    path : path, optional
        Where to write the figure (format from the extension, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((3, 16))
    >>> damaged = x.copy(); damaged[:, :4] = np.nan
    >>> fig = image_grid({"original": x, "damaged": damaged}, shape=(4, 4), n=3)
    >>> len(fig.axes)
    6
    """
    import matplotlib

    if not rows:
        raise ValueError("rows is empty: give at least one row of images")
    height, width = shape
    arrays = {label: np.asarray(imgs, dtype=np.float64) for label, imgs in rows.items()}
    for label, imgs in arrays.items():
        if imgs.ndim not in (2, 3) or imgs[0].size != height * width:
            raise ValueError(
                f"row {label!r} has shape {imgs.shape}: expected (N, {height * width}) or "
                f"(N, {height}, {width}) for shape={shape}"
            )
    cols = min(n, *(len(a) for a in arrays.values()))
    if cols < 1:
        raise ValueError("no image to draw")
    colormap = matplotlib.colormaps[cmap].with_extremes(bad=missing_color)
    fig = _figure(figsize=(cols * 0.9, len(arrays) * 1.0))
    axes = fig.subplots(len(arrays), cols, squeeze=False)
    for r, (label, imgs) in enumerate(arrays.items()):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(imgs[c].reshape(height, width), cmap=colormap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def imputation_grid(
    imputer: Any,
    original: np.ndarray,
    damaged: np.ndarray,
    shape: tuple[int, int] = (28, 28),
    n: int = 10,
    path: str | os.PathLike | None = None,
):
    """The seed's figure for a fitted :class:`~revml.ReverseImputer` on image data.

    Rows: original, damaged (missing pixels in red), direct AE (the autoencoder's whole
    output), reverse training and, when the imputer's ``clean_pass`` is on, reverse +
    clean pass. ``damaged`` has NaN where pixels are missing. The imputer itself is not
    changed.

    Examples
    --------
    >>> import numpy as np
    >>> from revml import ReverseImputer, masks
    >>> x = np.random.default_rng(0).random((30, 16))
    >>> damaged = masks.apply(x, masks.row_band(30, 4, 4, rows=1))
    >>> imp = ReverseImputer(random_state=0, epochs=2, n_steps=5).fit(x)
    >>> len(imputation_grid(imp, x, damaged, shape=(4, 4), n=4).axes)
    20
    """
    import copy

    model = copy.copy(imputer).set_params(strategy="reverse")
    n_rows = min(n, len(damaged))
    head = np.asarray(damaged)[:n_rows]
    details = model.transform_details(head)
    rows = {
        "original": np.asarray(original)[:n_rows],
        "damaged": head,
        "direct AE": model.direct_output(head),
    }
    if details.X_before_clean is not None:
        rows["reverse"] = details.X_before_clean
        rows["reverse + clean"] = details.X
    else:
        rows["reverse"] = details.X
    return image_grid(rows, shape=shape, n=n, path=path)


def error_chart(table: Any, path: str | os.PathLike | None = None, *, title: str | None = None):
    """Per-column error of each method, from :func:`revml.evaluate.compare`'s table.

    Numeric columns show RMSE (scaled to [0, 1]); categorical and boolean columns show
    the error rate, ``1 - accuracy``, and say so in their label. Horizontal grouped bars,
    one group per column, so weak columns and weak methods stand out.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .evaluate import ALL

    rows = table[table["column"] != ALL].copy()
    if rows.empty:
        raise ValueError("the table has no per-column rows to chart")
    categorical = rows["rmse"].isna()
    rows["error"] = np.where(categorical, 1.0 - rows["accuracy"], rows["rmse"])
    rows["label"] = np.where(
        categorical, rows["column"].astype(str) + " (1 - acc.)", rows["column"].astype(str)
    )
    labels = list(dict.fromkeys(rows["label"]))
    methods = list(dict.fromkeys(rows["method"]))
    wide = rows.pivot(index="label", columns="method", values="error").reindex(
        index=labels, columns=methods
    )
    height = max(3.0, 0.22 * len(labels) * len(methods) + 1.2)
    fig = _figure(figsize=(8, min(height, 60.0)))
    ax = fig.subplots()
    bar = 0.8 / len(methods)
    ys = np.arange(len(labels))
    for k, method in enumerate(methods):
        ax.barh(ys + k * bar, wide[method].to_numpy(), height=bar, label=method)
    ax.set_yticks(ys + bar * (len(methods) - 1) / 2, labels)
    ax.invert_yaxis()
    ax.set_xlabel("error on hidden cells: RMSE (scaled to [0, 1]) or 1 - accuracy")
    ax.set_title(title or "Imputation error per column (lower is better)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
