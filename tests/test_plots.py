"""Pictures: the seed's image grid from the Python API and the per-column error chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from revml import ReverseImputer, masks
from revml.experiments.mnist import save_figure
from revml.plots import error_chart, image_grid, imputation_grid

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def images(n=12, side=6, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, side, side))
    for i in range(n):  # a bright bar per image, so an AE has something to learn
        x[i, :, rng.integers(side)] = 1.0
    return x.reshape(n, side * side)


def test_image_grid_draws_every_row_and_marks_missing_pixels(tmp_path):
    x = images()
    damaged = masks.apply(x, masks.row_band(len(x), 6, 6, rows=2, seed=0))
    fig = image_grid(
        {"original": x, "damaged": damaged}, shape=(6, 6), n=5, path=tmp_path / "g.png"
    )
    assert len(fig.axes) == 10
    assert [ax.get_ylabel() for ax in fig.axes[::5]] == ["original", "damaged"]
    shown = fig.axes[5].images[0].get_array()
    assert np.ma.is_masked(shown) and shown.mask.sum() == 12  # NaN pixels drawn as "bad"
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="expected"):
        image_grid({"bad": x}, shape=(5, 5))
    with pytest.raises(ValueError, match="empty"):
        image_grid({})


def test_imputation_grid_from_a_fitted_imputer(tmp_path):
    x = images(n=40)
    damaged = masks.apply(x, masks.row_band(len(x), 6, 6, rows=2, seed=1))
    imp = ReverseImputer(random_state=0, epochs=3, n_steps=5, backend="reference").fit(x)
    fig = imputation_grid(imp, x, damaged, shape=(6, 6), n=4, path=tmp_path / "grid.png")
    labels = [ax.get_ylabel() for ax in fig.axes[::4]]
    assert labels == ["original", "damaged", "direct AE", "reverse", "reverse + clean"]
    assert imp.strategy == "reverse" and (tmp_path / "grid.png").stat().st_size > 1000
    no_clean = imp.set_params(clean_pass=False)
    assert len(imputation_grid(no_clean, x, damaged, shape=(6, 6), n=4).axes) == 16


def test_mnist_figure_keeps_its_name_and_layout(tmp_path):
    x = np.random.default_rng(0).random((10, 784))
    save_figure(tmp_path / "figure.png", x, x, x, x, x)
    assert (tmp_path / "figure.png").read_bytes()[:8] == PNG


def test_error_chart_labels_categorical_columns():
    table = pd.DataFrame(
        {
            "method": ["mean", "mean", "mean", "knn", "knn", "knn"],
            "column": ["a", "c", "(all)", "a", "c", "(all)"],
            "rmse": [0.2, np.nan, 0.2, 0.1, np.nan, 0.1],
            "accuracy": [np.nan, 0.75, 0.75, np.nan, 0.5, 0.5],
        }
    )
    fig = error_chart(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "c (1 - acc.)"]
    widths = sorted(round(p.get_width(), 3) for p in ax.patches)
    assert widths == [0.1, 0.2, 0.25, 0.5]
    with pytest.raises(ValueError, match="no per-column rows"):
        error_chart(table[table["column"] == "(all)"])
