"""The nearest-rows step of the tree blend (revml.neighbours, revml.blending)."""

from __future__ import annotations

import blend_steps as steps
import numpy as np
import pytest
import torch

from revml import ReverseImputer, neighbours
from revml.neighbours import N_NEIGHBOURS, fit_neighbours

FAST = {"epochs": 30, "n_steps": 20, "random_state": 0}


_hide = steps.hide


def _clusters(n=400, seed=0):
    """Rows near one of eight centres in five features: a row's neighbours know it."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(8, 5))
    return centres[rng.integers(8, size=n)] + 0.1 * rng.normal(size=(n, 5))


@pytest.mark.parametrize(("n", "d", "rate", "seed"), [(300, 6, 0.2, 0), (120, 12, 0.45, 1)])
def test_matches_scikit_learns_knn_imputer(n, d, rate, seed):
    """scikit-learn's ``KNNImputer`` with its defaults is the oracle: on continuous data (no
    equal distances) where every row observes a value, the same imputation to 1e-12, on the
    training rows and on new rows."""
    from sklearn.impute import KNNImputer

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, d))
    damaged, _ = _hide(x, rate=rate, seed=seed + 5)
    train, test = damaged[:n], damaged[n:]
    want = KNNImputer().fit(train)
    ours = fit_neighbours(train, seed=0)
    for rows in (train, test):
        got = ours.conditional_mean(np.nan_to_num(rows), np.isnan(rows))
        np.testing.assert_allclose(got, want.transform(rows), rtol=1e-12, atol=1e-12)


def test_finds_the_rows_cluster():
    """Rows observing most of their features find rows of their cluster: their missing
    entries land far closer than the column means do (a donor that shares one feature
    with the row can still pass for near: the nan-Euclidean distance's way)."""
    x = _clusters()
    damaged, miss = _hide(x, rate=0.3)
    out = fit_neighbours(damaged, seed=0).conditional_mean(np.nan_to_num(damaged), miss)
    rows = (~miss).sum(1) >= 4  # one entry missing: the cluster shows
    cells = miss & rows[:, None]
    assert cells.sum() > 30
    err = np.sqrt(np.mean((out[cells] - x[cells]) ** 2))
    means = np.broadcast_to(np.nanmean(damaged, 0), x.shape)
    assert err < 0.25 * np.sqrt(np.mean((means[cells] - x[cells]) ** 2)), err
    assert np.array_equal(out[~miss], np.nan_to_num(damaged)[~miss])


def test_equal_distances_rank_by_training_row_order():
    """Six training rows tie at distance 0 from the query: the first five in order give
    the mean, the sixth (an outlier in the missing feature) is left out."""
    ref = np.array([[0.0, float(v)] for v in (1, 2, 3, 4, 5, 1000)])
    got = fit_neighbours(ref, seed=0).conditional_mean(
        np.array([[0.0, -1.0]]), np.array([[False, True]])
    )
    assert N_NEIGHBOURS == 5
    assert got[0, 1] == 3.0


def test_no_donor_keeps_the_value():
    """An entry no training row can speak for (the row shares no observed feature with any
    row observing it) keeps its value; a row with nothing missing is returned as is."""
    ref = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, 5.0]])
    values = np.array([[np.nan, 7.0], [3.0, 4.0]])
    miss = np.array([[True, False], [False, False]])
    got = fit_neighbours(ref, seed=0).conditional_mean(np.nan_to_num(values, nan=9.0), miss)
    # row 0 observes only feature 1; the rows observing feature 0 do not observe feature 1
    assert got[0, 0] == 9.0 and got[0, 1] == 7.0
    assert np.array_equal(got[1], values[1])


def test_rows_are_imputed_alone(monkeypatch):
    """A row's imputation depends on its own entries and the training rows only: rows
    split into any chunks, or computed a few at a time inside, give the same bits."""
    x = _clusters(500, seed=3)
    damaged, miss = _hide(x, rate=0.3, seed=4)
    ref = fit_neighbours(damaged[:300], seed=0)
    values = np.nan_to_num(damaged)
    whole = ref.conditional_mean(values, miss)
    parts = [ref.conditional_mean(values[i : i + 37], miss[i : i + 37]) for i in range(0, 500, 37)]
    assert np.array_equal(np.vstack(parts), whole)
    monkeypatch.setattr(neighbours, "CHUNK", 300 * 7)  # seven rows at a time
    assert np.array_equal(ref.conditional_mean(values, miss), whole)


def test_reference_rows_are_capped_by_a_seeded_subset(monkeypatch):
    monkeypatch.setattr(neighbours, "MAX_REFERENCE", 50)
    rng = np.random.default_rng(5)
    data = rng.normal(size=(200, 3))
    data[7] = np.nan  # a row that observes nothing is never a donor
    a, b = fit_neighbours(data, seed=1), fit_neighbours(data, seed=1)
    assert a.data.shape == (50, 3) and np.array_equal(a.data, b.data)
    assert not np.isnan(a.data).all(1).any()
    assert not np.array_equal(fit_neighbours(data, seed=2).data, a.data)
    rows = [np.flatnonzero((data == r).all(1))[0] for r in a.data]
    assert rows == sorted(rows)  # the training rows' order is kept


@pytest.fixture(scope="module")
def cluster_fit():
    x = _clusters(400, seed=6)
    damaged, miss = _hide(x, seed=7)
    return x, damaged, miss, ReverseImputer(**FAST).fit(damaged)


def test_the_bar_decides_the_step(monkeypatch):
    x = _clusters(300, seed=8)
    damaged, _ = _hide(x, seed=9)
    steps.check_the_bar_decides_the_step(
        monkeypatch, damaged, FAST, "MIN_NEIGHBOUR_GAIN", "neighbour_weights", "neighbours"
    )


def _forced(imp):
    """``imp`` with only the neighbours' step: every weight 1, no other step, no trees."""
    return steps.only_step(
        imp, "neighbour_weights", "neighbours", lambda blend: fit_neighbours(blend.data, blend.seed)
    )


def test_transform_applies_the_neighbours_step(cluster_fit):
    _, damaged, miss, imp = cluster_fit
    steps.check_transform_applies_the_step(_forced(imp), damaged, miss, "neighbours")


def test_neighbours_step_is_kept_by_save_and_load_and_chunking(cluster_fit, tmp_path):
    _, damaged, _, imp = cluster_fit
    steps.check_kept_by_save_and_load_and_chunking(
        _forced(imp), damaged, "neighbour_weights", tmp_path, exact_chunks=False
    )


def test_a_saved_step_must_match_the_features(cluster_fit, tmp_path):
    """A weights file whose neighbours' weights do not fit the blend (checksums resealed)
    fails to load with a clear error."""
    import hashlib
    import json

    from safetensors.torch import load_file, save_file

    from revml.persistence import CONFIG_FILE, MODEL_FILE, _canonical
    from revml.state import NEIGHBOURS_KEY

    _, damaged, _, imp = cluster_fit
    folder = _forced(imp).save(tmp_path / "model")
    tensors = load_file(folder / MODEL_FILE)
    tensors[NEIGHBOURS_KEY] = torch.ones(damaged.shape[1] + 1, dtype=torch.float64)
    save_file(tensors, folder / MODEL_FILE)
    blob = (folder / MODEL_FILE).read_bytes()
    config = json.loads((folder / CONFIG_FILE).read_text())
    config.pop("config_sha256", None)
    config["files"][MODEL_FILE] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    config["config_sha256"] = hashlib.sha256(_canonical(config)).hexdigest()
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(Exception, match="neighbours' step does not match"):
        ReverseImputer.load(folder)


def test_no_blend_no_neighbour_weights():
    x = _clusters(200)
    damaged, _ = _hide(x)
    imp = ReverseImputer(blend="none", **FAST).fit(damaged)
    assert not imp.fitted_neighbour_weights_.any()
