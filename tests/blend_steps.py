"""Checks shared by the blend's steps that follow the copula (chained regressions, nearest
rows): each is named by its weights' attribute on :class:`revml.trees.TreeBlend`, its
model's attribute and its bar in :mod:`revml.blending`."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from revml import ReverseImputer, blending

#: The optional steps' weights on a blend, in order, and the imputer's attribute for each:
#: a test of one step turns the others off.
STEP_WEIGHTS = {
    "copula_weights": "fitted_copula_weights_",
    "chained_weights": "fitted_chained_weights_",
    "neighbour_weights": "fitted_neighbour_weights_",
}


def hide(x: np.ndarray, rate: float = 0.2, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with a seeded ``rate`` of its entries NaN (every row keeps one), and the mask."""
    rng = np.random.default_rng(seed)
    miss = rng.random(x.shape) < rate
    miss[miss.all(1), 0] = False  # every row keeps a value
    return np.where(miss, np.nan, x), miss


def fitted(imp: ReverseImputer, weights: str) -> np.ndarray:
    """The imputer's public copy of the blend's ``weights`` (0 where no such step)."""
    return getattr(imp, STEP_WEIGHTS[weights])


def check_the_bar_decides_the_step(
    monkeypatch, damaged: np.ndarray, params: dict, bar: str, weights: str, model: str
) -> None:
    """With no bar the step is taken wherever a weight is above 0; with an unreachable one
    never, and the steps before it keep their weights."""
    monkeypatch.setattr(blending, bar, -np.inf)
    taken = ReverseImputer(**params).fit(damaged)
    monkeypatch.setattr(blending, bar, np.inf)
    skipped = ReverseImputer(**params).fit(damaged)
    w = getattr(taken.state_.blend, weights)
    assert w.shape == (damaged.shape[1],) and ((w >= 0) & (w <= 1)).all() and w.any()
    assert getattr(taken.state_.blend, model) is not None
    np.testing.assert_array_equal(fitted(taken, weights), w)
    assert not fitted(skipped, weights).any()
    assert skipped.state_.blend is None or getattr(skipped.state_.blend, model) is None
    names = list(STEP_WEIGHTS)
    for name in names[: names.index(weights)]:
        np.testing.assert_array_equal(fitted(taken, name), fitted(skipped, name))


def only_step(imp: ReverseImputer, weights: str, model: str, fitted: Callable) -> ReverseImputer:
    """A copy of ``imp`` with only this step: its weights 1 and its model ``fitted(blend)``,
    the Gaussian step, the other steps and the trees off."""
    forced = copy.deepcopy(imp)
    blend = forced.state_.blend
    d = blend.data.shape[1]
    blend.gaussian = np.zeros(d)
    for name in STEP_WEIGHTS:
        setattr(blend, name, None)
    blend.passes = []
    setattr(blend, weights, np.ones(d))
    setattr(blend, model, fitted(blend))
    return forced


def check_transform_applies_the_step(
    forced: ReverseImputer, damaged: np.ndarray, miss: np.ndarray, model: str
) -> None:
    """With the step's weights at 1 and every other step off (:func:`only_step`),
    transform returns the model's imputation of every missing entry, observed values
    untouched."""
    out = forced.set_params(clamp=False).transform(damaged)
    state = forced.state_
    xs = state.scaler.scale(torch.from_numpy(damaged)).numpy().astype(np.float64)
    want = getattr(state.blend, model).conditional_mean(np.nan_to_num(xs), miss)
    expected = state.scaler.unscale(torch.from_numpy(want)).numpy()
    np.testing.assert_allclose(out[miss], expected[miss], rtol=1e-5, atol=1e-6)
    assert np.array_equal(out[~miss], damaged[~miss])


def check_kept_by_save_and_load_and_chunking(
    forced: ReverseImputer, damaged: np.ndarray, weights: str, tmp_path, exact_chunks: bool
) -> None:
    """Half weights survive save and load, which gives the same bits; a transform in two
    chunks gives the same values (the same bits with ``exact_chunks``: otherwise the
    loop's float rounding may differ with the rows beside a row, see the README's "The
    method, exactly")."""
    setattr(forced.state_.blend, weights, np.full(damaged.shape[1], 0.5))
    out = forced.transform(damaged)
    forced.save(tmp_path / "model")
    loaded = ReverseImputer.load(tmp_path / "model")
    np.testing.assert_array_equal(fitted(loaded, weights), fitted(forced, weights))
    assert np.array_equal(loaded.transform(damaged), out)
    head = forced.transform_details(damaged[:170]).X
    tail = forced.transform_details(damaged[170:], row_offset=170).X
    if exact_chunks:
        assert np.array_equal(np.vstack([head, tail]), out)
    else:
        np.testing.assert_allclose(np.vstack([head, tail]), out, rtol=1e-5, atol=1e-6)
