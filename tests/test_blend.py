"""The tree blend of tables (revml.trees, revml.blending)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from revml import ReverseImputer, trees
from revml.blending import (
    VALIDATION_SHARE,
    categorical_groups,
    numeric_features,
    validation_cells,
)
from revml.tabular import TabularEncoder
from revml.trees import N_PASSES, SHRINK_CELLS, choose_weights


def _step_table(n=400, seed=0):
    """Columns where a tree wins: ``steps`` is a step function of ``a``; ``c`` is smooth."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 10, n)
    steps = np.floor(a / 2.5) * 3.0 + rng.normal(0, 0.05, n)
    c = 0.5 * a + rng.normal(0, 0.3, n)
    d = rng.normal(0, 1, n)
    return np.column_stack([a, steps, c, d])


def _damaged(x, rate=0.2, seed=1):
    rng = np.random.default_rng(seed)
    miss = rng.random(x.shape) < rate
    out = x.copy()
    out[miss] = np.nan
    return out, miss


FAST = {"epochs": 30, "n_steps": 20, "random_state": 0}


def test_weights_follow_which_prediction_is_right():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(200, 3))
    hidden = np.ones_like(truth, dtype=bool)
    noise = rng.normal(size=truth.shape)
    # column 0: trees exact, loop noisy; column 1: the reverse; column 2: both halfway
    trees = np.column_stack([truth[:, 0], truth[:, 1] + noise[:, 1], truth[:, 2] + noise[:, 2]])
    loop = np.column_stack([truth[:, 0] + noise[:, 0], truth[:, 1], truth[:, 2] - noise[:, 2]])
    w = choose_weights(truth, loop, trees, hidden)
    assert w[0] > 0.75 and w[1] < 0.25 and abs(w[2] - 0.5) < 0.1
    assert ((w >= 0) & (w <= 1)).all()


def test_few_cells_lean_on_the_pooled_weight():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(400, 2))
    trees = truth.copy()
    loop = truth + rng.normal(size=truth.shape)
    hidden = np.zeros_like(truth, dtype=bool)
    hidden[:, 0] = True
    hidden[:5, 1] = True
    trees[:5, 1] = truth[:5, 1] + 3.0  # the few cells of column 1 say "trees are bad"
    w = choose_weights(truth, loop, trees, hidden)
    # column 1's own estimate is ~0, the pooled one ~1: 5 cells give it 5 / (5 + 50) own
    assert w[1] > 0.8 * SHRINK_CELLS / (5 + SHRINK_CELLS)
    assert np.isfinite(w).all()


@pytest.fixture(scope="module")
def step_fit():
    x = _step_table()
    damaged, miss = _damaged(x)
    blended = ReverseImputer(**FAST).fit(damaged)
    return x, damaged, miss, blended


def test_blend_lowers_the_error_where_trees_know_better(step_fit):
    x, damaged, miss, imp = step_fit
    w = imp.fitted_blend_weights_
    # row 0: the Gaussian step, then one row per pass of trees
    assert w.shape[0] in range(2, N_PASSES + 2) and w.shape[1] == 4, w.shape
    assert w[1, 1] > 0.3, w
    out = imp.transform(damaged)
    plain = imp.set_params(blend="none").transform(damaged)
    imp.set_params(blend="auto")

    def rmse(filled, j):
        return float(np.sqrt(np.mean((filled[miss[:, j], j] - x[miss[:, j], j]) ** 2)))

    assert rmse(out, 1) < 0.9 * rmse(plain, 1)  # measured: 0.82 against 0.98
    # observed values never change
    assert np.array_equal(out[~miss], damaged[~miss])
    assert np.isfinite(out).all()


def test_blend_is_kept_by_save_and_load_and_chunking(step_fit, tmp_path):
    _, damaged, _, imp = step_fit
    out = imp.transform(damaged)
    imp.save(tmp_path / "model")
    loaded = ReverseImputer.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.fitted_blend_weights_, imp.fitted_blend_weights_)
    assert np.array_equal(loaded.transform(damaged), out)
    head = imp.transform_details(damaged[:150]).X
    tail = imp.transform_details(damaged[150:], row_offset=150).X
    assert np.array_equal(np.vstack([head, tail]), out)


def test_blend_none_and_images_fit_no_trees():
    x = _step_table(200)
    damaged, _ = _damaged(x)
    assert ReverseImputer(blend="none", **FAST).fit(damaged).fitted_blend_weights_.shape == (0, 4)
    rng = np.random.default_rng(0)
    images = rng.random((120, 16))
    images[rng.random(images.shape) < 0.2] = np.nan
    imp = ReverseImputer(image_shape=(4, 4), **FAST).fit(images)
    assert imp.state_.blend is None


def test_a_category_takes_one_weight_a_step():
    x = _step_table(300)
    frame = pd.DataFrame(x, columns=["a", "steps", "c", "d"])
    frame["kind"] = pd.Categorical(np.where(x[:, 0] > 5, "high", "low"))
    damaged = frame.mask(np.random.default_rng(2).random(frame.shape) < 0.15)
    imp = ReverseImputer(**FAST).fit(damaged)
    w = imp.fitted_blend_weights_
    assert w.shape[1] == 6  # four numbers, two one-hot features
    assert (w[:, 4] == w[:, 5]).all()  # the Gaussian step and each pass: one weight
    out = imp.transform(damaged)
    assert out.notna().all().all()
    assert set(out["kind"].unique()) <= {"high", "low"}


def _band_category_frame(n=800, seed=0):
    """A category that is a band of one number (inside 3 < a < 7 or outside): no linear
    model reads it, trees do; the other numbers are noise around ``a``."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 10, n)
    frame = pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.3, n), "c": rng.normal(0, 1, n)})
    frame["band"] = pd.Categorical(np.where((a > 3) & (a < 7), "in", "out"))
    hidden = rng.random(frame.shape) < 0.2
    hidden[:, 0] &= ~hidden[:, 3]  # keep a row's number when its category is hidden
    return frame, frame.mask(hidden), hidden


def test_trees_classify_a_category_the_normal_model_cannot(tmp_path):
    """A band of a number: the pass's classifier learns it, takes a positive weight (one
    for the column), and the blend's categories beat the loop's alone; a saved imputer
    rebuilds the same classifiers."""
    frame, damaged, hidden = _band_category_frame()
    imp = ReverseImputer(**{**FAST, "epochs": 3}).fit(damaged)
    blend = imp.state_.blend
    assert blend.passes and (3, 5) in blend.passes[0].classifiers
    w = imp.fitted_blend_weights_
    assert w[1, 3] == w[1, 4] > 0, w
    rows = hidden[:, 3]
    truth = frame["band"][rows]
    out = imp.transform(damaged)
    blended = (out["band"][rows] == truth).mean()
    alone = (imp.set_params(blend="none").transform(damaged)["band"][rows] == truth).mean()
    assert blended > 0.85 and blended > alone, (blended, alone)
    imp.set_params(blend="auto").save(tmp_path / "model")
    loaded = ReverseImputer.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.transform(damaged), out, check_exact=True)


def test_forest_predict_proba_is_the_forests_own_bit_for_bit():
    from sklearn.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(12)
    x = rng.normal(size=(300, 5))
    labels = np.digitize(x[:, 0] + 0.3 * rng.normal(size=300), [-0.5, 0.5])  # three classes
    model = ExtraTreesClassifier(30, random_state=1).fit(x, labels)
    fresh = rng.normal(size=(41, 5)) * 3
    ours = trees.forest_predict_proba(model, fresh)
    assert np.array_equal(ours, model.predict_proba(fresh))
    wrapped = trees.CategoryTrees(model, np.array([-0.2, -0.5, -0.3, -0.1]), np.ones(4) * 0.6)
    # a class the trees never saw (the fourth) gets probability 0: its "off" value
    model.classes_ = np.array([0, 1, 3])
    pred = wrapped.predict(fresh)
    np.testing.assert_allclose(pred[:, 2], -0.3)
    np.testing.assert_allclose(pred[:, 3], -0.1 + ours[:, 2] * 0.7)


def _linear_category_frame(n=600, seed=0):
    """Six numbers driven by one factor and a category that is the factor's sign: a normal
    model of the one-hot features reads the category off the numbers."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 1))
    x = z @ np.ones((1, 6)) + 0.3 * rng.normal(size=(n, 6))
    frame = pd.DataFrame(x, columns=list("pqrstu"))
    frame["sign"] = pd.Categorical(np.where(z[:, 0] > 0, "plus", "minus"))
    hidden = rng.random(frame.shape) < 0.25
    return frame, frame.mask(hidden), hidden


def test_the_gaussian_step_moves_a_category_it_knows():
    """An autoencoder trained one epoch knows little; the normal model knows the category
    from the numbers. The category's held values give the Gaussian step most of the weight,
    one weight for both one-hot features, and its hidden values come out far more often
    right than the loop's alone."""
    frame, damaged, hidden = _linear_category_frame()
    imp = ReverseImputer(**{**FAST, "epochs": 1}).fit(damaged)
    w = imp.fitted_blend_weights_
    assert w.shape[1] == 8 and w[0, 6] == w[0, 7] > 0.5, w
    rows = hidden[:, 6]
    truth = frame["sign"][rows]
    blended = (imp.transform(damaged)["sign"][rows] == truth).mean()
    alone = (imp.set_params(blend="none").transform(damaged)["sign"][rows] == truth).mean()
    assert blended > 0.9 and blended > alone + 0.1, (blended, alone)


def test_validation_cells_hold_a_category_whole():
    _, damaged, _ = _linear_category_frame(2000, seed=1)
    damaged.iloc[:20, :6] = np.nan  # rows that observe the category alone keep it
    encoder = TabularEncoder().fit(damaged)
    x = torch.from_numpy(encoder.encode(damaged))
    groups = categorical_groups(encoder)
    assert [(g.start, g.stop) for g in groups] == [(6, 8)]
    features = numeric_features(encoder, x.shape[1])
    held = validation_cells(x, features, seed=3, groups=groups).numpy()
    observed = ~np.isnan(x.numpy())
    assert not (held & ~observed).any()
    assert not held[:20].any()
    assert np.array_equal(held[:, 6], held[:, 7])  # the one-hot vector goes as one value
    share = held[:, 6].sum() / observed[:, 6].sum()
    assert abs(share - VALIDATION_SHARE) < 0.02, share
    # every row keeps one value at least; a row of one value keeps it
    values = observed[:, :6].sum(1) + observed[:, 6]
    left = (observed & ~held)[:, :6].sum(1) + (observed & ~held)[:, 6]
    assert (left >= np.minimum(values, 1)).all()
    # the numeric cells are those an array of the numbers alone would hold
    alone = validation_cells(x, features, seed=3).numpy()
    assert not alone[:, 6:].any()
    same = held[:, :6] == alone[:, :6]
    assert same.mean() > 0.99


def test_validation_cells_are_a_share_of_observed_numeric_cells():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 5))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:50, 1:] = np.nan  # rows observing one value keep it
    held = validation_cells(torch.from_numpy(x), np.array([0, 1, 3]), seed=7).numpy()
    observed = ~np.isnan(x)
    assert not (held & ~observed).any()
    assert not held[:, [2, 4]].any()  # only the features asked for
    assert not held[:50].any()
    assert ((observed & ~held).sum(1) >= np.minimum(observed.sum(1), 1)).all()
    share = held[:, [0, 1, 3]].sum() / observed[50:, [0, 1, 3]].sum()
    assert abs(share - VALIDATION_SHARE) < 0.01, share
    again = validation_cells(torch.from_numpy(x), np.array([0, 1, 3]), seed=7).numpy()
    assert np.array_equal(held, again)


def test_the_autoencoder_never_sees_the_held_cells():
    """The values of the blend's validation cells never reach the autoencoder: it is the
    same whatever those values are, as long as the scaling's statistics stay (the held
    values are shuffled within each column); the final prior is fitted on every cell."""
    from revml.fitting import seeds

    x = _step_table(300)
    damaged, _ = _damaged(x)
    held = validation_cells(torch.from_numpy(damaged), np.arange(4), seeds(0)[0]).numpy()
    assert held.any()
    other = damaged.copy()
    rng = np.random.default_rng(0)
    for j in range(4):
        rows = np.flatnonzero(held[:, j])
        other[rows, j] = other[rng.permutation(rows), j]
    assert not np.array_equal(other, damaged)
    a = ReverseImputer(**FAST).fit(damaged)
    b = ReverseImputer(**FAST).fit(other)
    # Equal up to the rounding of the scaling's sums (the shuffle reorders them); a fit
    # that does learn from those cells (no blend, nothing held) moves far more.
    control = ReverseImputer(blend="none", **FAST).fit(other)
    for p, q in zip(
        a.state_.autoencoder.parameters(), b.state_.autoencoder.parameters(), strict=True
    ):
        assert torch.allclose(p, q, rtol=0, atol=1e-5)
    moved = max(
        float((p - c).abs().max())
        for p, c in zip(
            a.state_.autoencoder.parameters(),
            control.state_.autoencoder.parameters(),
            strict=True,
        )
    )
    assert moved > 1e-3, moved
    # The final prior reads every observed cell, the held ones too, as the kept trees do
    # (the held-out prior only chose the weights): it is the whole table's.
    from revml.prior import fit_gaussian

    for imp, data in ((a, damaged), (b, other)):
        scaled = imp.state_.scaler.scale(torch.from_numpy(data).float())
        want = fit_gaussian(scaled, ~torch.isnan(scaled), seed=seeds(0)[0])
        assert torch.allclose(imp.state_.prior.precision, want.precision, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a.state_.prior.precision, b.state_.prior.precision, atol=1e-3)


def test_transform_applies_the_gaussian_step_first():
    """With the step's weight at 1 and no tree passes, transform returns the fitted
    prior's conditional mean of every missing entry, observed entries untouched."""
    import copy

    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(500, 6))
    damaged, miss = _damaged(x, seed=5)
    imp = ReverseImputer(**FAST).fit(damaged)
    w = imp.fitted_blend_weights_
    assert w.shape[1] == 6 and ((w >= 0) & (w <= 1)).all(), w
    forced = copy.deepcopy(imp)
    forced.state_.blend.gaussian = np.ones(6)
    forced.state_.blend.copula_weights = None  # no copula step (tests/test_copula.py)
    forced.state_.blend.chained_weights = None  # nor the later steps
    forced.state_.blend.neighbour_weights = None
    forced.state_.blend.passes = []
    out = forced.set_params(clamp=False).transform(damaged)  # clamp would clip the mean
    state = forced.state_
    xs = state.scaler.scale(torch.from_numpy(damaged))
    mean = state.prior.conditional_mean(torch.nan_to_num(xs), torch.from_numpy(miss))
    expected = state.scaler.unscale(mean).numpy()
    np.testing.assert_allclose(out[miss], expected[miss], rtol=1e-6, atol=1e-6)
    assert np.array_equal(out[~miss], damaged[~miss])


def test_gaussian_step_is_the_conditional_mean_at_weight_one():
    from revml.prior import fit_gaussian
    from revml.trees import gaussian_step

    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    miss = rng.random(x.shape) < 0.2
    observed = torch.from_numpy(~miss)
    prior = fit_gaussian(torch.from_numpy(np.where(miss, 0.0, x)), observed, seed=0)
    values = np.where(miss, 0.0, x)
    full = gaussian_step(values, miss, np.ones(4), prior)
    expected = prior.conditional_mean(torch.from_numpy(values), torch.from_numpy(miss)).numpy()
    assert np.array_equal(full, expected)
    half = gaussian_step(values, miss, np.full(4, 0.5), prior)
    assert np.allclose(half[miss], 0.5 * expected[miss] + 0.5 * values[miss])
    assert np.array_equal(half[~miss], x[~miss])
    assert np.array_equal(gaussian_step(values, miss, np.zeros(4), prior), values)


def test_a_pass_that_gains_too_little_is_not_kept(monkeypatch):
    """On a low-rank normal table the Gaussian step already knows what trees could add: the
    first pass of trees lowers the held cells' error by less than MIN_PASS_GAIN and the blend
    ends there (no kept trees, no second pass). With the bar at 0 the same fit keeps two
    passes or more, so it is the rule, not a lack of gain, that drops them."""
    import revml.blending as blending

    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(500, 6))
    damaged, _ = _damaged(x, seed=5)
    assert ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_.shape == (1, 6)
    monkeypatch.setattr(blending, "MIN_PASS_GAIN", 0.0)
    monkeypatch.setattr(blending, "LATE_PASS_GAIN", 0.0)
    kept = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    assert kept.shape[0] >= 1 + 2 and kept.shape[1] == 6  # (a third can make it worse)


def test_a_pass_after_the_second_is_tried_only_after_one_that_gained_enough(monkeypatch):
    """A pass after the second trains its trial trees only where the pass before it lowered
    the held cells' error by LATE_PASS_GAIN: with the bar just above the second pass's
    measured gain the blend stops after two passes, just below it it tries (and here keeps)
    a third, and the first two passes are the same fit either way; with a fourth allowed,
    the third pass's gain decides it the same way."""
    import revml.blending as blending

    assert N_PASSES >= 4
    monkeypatch.setattr(blending, "N_PASSES", 3)
    # The gains recorded below are the passes' alone: no chained or neighbours' step
    # scores one first.
    monkeypatch.setattr(blending, "CHAINED", False)
    monkeypatch.setattr(blending, "NEIGHBOURS", False)
    rng = np.random.default_rng(8)
    x = rng.uniform(size=(400, 5))
    x[:, 1] = np.floor(4 * x[:, 0]) + 0.05 * rng.normal(size=400)  # steps: trees know them
    x[:, 2] = (x[:, 0] > 0.5) * x[:, 3] + 0.05 * rng.normal(size=400)
    damaged, _ = _damaged(x, seed=9)
    monkeypatch.setattr(blending, "MIN_PASS_GAIN", 0.0)  # every tried pass is kept
    gains, steps = [], []
    measured, fit_trees = blending._gain, blending.fit_trees

    def gain(*args):
        gains.append(measured(*args))
        return gains[-1]

    def counted(*args, **kwargs):
        steps.append(args[4])
        return fit_trees(*args, **kwargs)

    monkeypatch.setattr(blending, "_gain", gain)
    monkeypatch.setattr(blending, "fit_trees", counted)
    monkeypatch.setattr(blending, "LATE_PASS_GAIN", 0.0)
    three = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    assert three.shape == (1 + 3, 5)
    second = gains[1]
    assert second > 0, gains
    assert steps == [0, 0, 1, 1, 2, 2]  # trial and kept trees a pass
    gains.clear(), steps.clear()
    monkeypatch.setattr(blending, "LATE_PASS_GAIN", second * 1.0001)
    two = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    assert two.shape == (1 + 2, 5) and steps == [0, 0, 1, 1]
    np.testing.assert_array_equal(two, three[:3])
    gains.clear(), steps.clear()
    monkeypatch.setattr(blending, "LATE_PASS_GAIN", second * 0.9999)
    again = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    np.testing.assert_array_equal(again, three)
    monkeypatch.setattr(blending, "N_PASSES", 4)
    gains.clear(), steps.clear()
    monkeypatch.setattr(blending, "LATE_PASS_GAIN", 0.0)
    ReverseImputer(**FAST).fit(damaged)
    assert steps[:7] == [0, 0, 1, 1, 2, 2, 3], steps  # the fourth pass's trial trees
    gains.clear(), steps.clear()

    def no_third_gain(*args):  # the third pass reports no gain: no fourth is tried
        gains.append(measured(*args) if len(gains) != 2 else 0.0)
        return gains[-1]

    monkeypatch.setattr(blending, "_gain", no_third_gain)
    monkeypatch.setattr(blending, "LATE_PASS_GAIN", second * 0.5)
    stopped = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    assert steps == [0, 0, 1, 1, 2, 2], steps
    np.testing.assert_array_equal(stopped, three)


def test_threads_change_the_speed_of_the_trees_never_the_trees():
    # Features fit side by side in threads above PARALLEL_TREE_CELLS: the same forests as
    # one thread fitting them in turn.
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(400, 20))
    inputs[:, 1:] += inputs[:, :1]
    targets = np.where(rng.random(inputs.shape) < 0.2, np.nan, inputs)
    assert 400 * 19 * 0.8 >= trees.PARALLEL_TREE_CELLS
    features = np.arange(20)
    serial, _ = trees.fit_trees(inputs, targets, features, seed=5, step=1, n_jobs=None)
    threaded, _ = trees.fit_trees(inputs, targets, features, seed=5, step=1, n_jobs=2)
    assert list(serial) == list(threaded) == list(range(20))
    for j in features:
        x = trees.other_columns(inputs, j)
        assert np.array_equal(
            trees.forest_predict(serial[j], x), trees.forest_predict(threaded[j], x)
        )


def test_the_blends_forests_are_scikit_learns_bit_for_bit():
    # The blend builds its trees without the ensemble and sums their predictions without
    # joblib; forest for forest, the numbers must be scikit-learn's ExtraTrees'.
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(11)
    inputs = rng.normal(size=(300, 8))
    inputs[:, 0] = np.round(inputs[:, 1] * 3)  # ties and thresholds, float64 on the way in
    targets = np.where(rng.random(inputs.shape) < 0.3, np.nan, inputs * 1.7 + 0.1)
    forests, _ = trees.fit_trees(inputs, targets, np.arange(8), seed=2)
    assert list(forests) == list(range(8))
    fresh = rng.normal(size=(57, 8)) * 4  # beyond the training range too
    for j, model in forests.items():
        rows = ~np.isnan(targets[:, j])
        state = int(np.random.SeedSequence([2, 0, j]).generate_state(1)[0] >> 1)
        theirs = ExtraTreesRegressor(trees.N_TREES, random_state=state)
        theirs.fit(trees.other_columns(inputs[rows], j), targets[rows, j])
        x = trees.other_columns(fresh, j)
        ours = trees.forest_predict(model, x)
        assert ours.dtype == np.float64 and ours.shape == (57,)
        assert np.array_equal(ours, theirs.predict(x))
        assert np.array_equal(trees.forest_predict(theirs, x), theirs.predict(x))


def test_a_forest_on_many_rows_grows_fewer_trees_on_all_of_them(monkeypatch):
    # Beyond TREE_ROW_BUDGET / N_TREES rows a feature's forest is smaller (MIN_TREES at
    # least) and learns from every row up to MAX_TREE_ROWS, a seeded subset beyond: each
    # forest is still scikit-learn's, of that many trees, on those rows.
    from sklearn.ensemble import ExtraTreesRegressor

    monkeypatch.setattr(trees, "TREE_ROW_BUDGET", 3000)
    monkeypatch.setattr(trees, "MIN_TREES", 8)
    monkeypatch.setattr(trees, "MAX_TREE_ROWS", 280)
    assert [trees.forest_size(n) for n in (50, 100, 150, 280, 400)] == [30, 30, 20, 10, 8]
    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(400, 4))
    targets = inputs * 2.0
    share = {0: 0.0, 1: 0.6, 2: 0.3}  # feature -> share missing: 400, ~160 and ~280 rows
    for j, p in share.items():
        targets[rng.random(400) < p, j] = np.nan
    forests, _ = trees.fit_trees(inputs, targets, np.arange(3), seed=4)
    fresh = rng.normal(size=(21, 4))
    for j, model in forests.items():
        rows = np.flatnonzero(~np.isnan(targets[:, j]))
        if len(rows) > 280:
            rows = np.sort(np.random.default_rng([4, j]).choice(rows, 280, replace=False))
        size = trees.forest_size(len(rows))
        assert len(model.estimators_) == size
        assert all(t.tree_.n_node_samples[0] == len(rows) for t in model.estimators_)
        state = int(np.random.SeedSequence([4, 0, j]).generate_state(1)[0] >> 1)
        theirs = ExtraTreesRegressor(size, random_state=state)
        theirs.fit(trees.other_columns(inputs[rows], j), targets[rows, j])
        x = trees.other_columns(fresh, j)
        assert np.array_equal(trees.forest_predict(model, x), theirs.predict(x))
    assert len({len(m.estimators_) for m in forests.values()}) > 1  # the rule at work


@pytest.mark.parametrize("labels", [[0, 1, 2], [3, 7, 11, 12]])
def test_a_categorys_forest_is_scikit_learns_classifier_bit_for_bit(labels):
    from sklearn.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(len(labels))
    x = rng.normal(size=(250, 6))
    x[:, 1] = np.round(x[:, 1])
    y = np.asarray(labels)[rng.integers(0, len(labels), 250)]
    ours = trees.fit_forest(x, y, 987, classifier=True)
    theirs = ExtraTreesClassifier(trees.N_TREES, random_state=987).fit(x, y)
    assert np.array_equal(ours.classes_, theirs.classes_)
    fresh = rng.normal(size=(33, 6)) * 2
    assert np.array_equal(trees.forest_predict_proba(ours, fresh), theirs.predict_proba(fresh))


def test_a_passs_gain_is_scored_on_cells_its_weights_never_saw():
    """With GAIN_FOLDS folds each fold's held cells move with the weights chosen on the
    other folds' cells (one fold: the weights fitted to every held cell, ``moved`` itself).
    Trees that know nothing look like a gain when scored on the cells their weights were
    fitted to; scored out of sample, they lose."""
    from revml.blending import _cross_fitted, _gain
    from revml.trees import choose_group_weights

    rng = np.random.default_rng(11)
    truth = rng.normal(size=(600, 4))
    loop = truth + rng.normal(size=truth.shape)
    other = loop + rng.normal(size=truth.shape)  # no knowledge of the truth at all
    held = rng.random(truth.shape) < 0.3
    weights = choose_weights(truth, loop, other, held)
    moved = weights * other + (1 - weights) * loop
    one = np.zeros(len(truth), dtype=int)
    assert _cross_fitted(truth, loop, other, held, held, [], one, moved) is moved
    folds = rng.integers(2, size=len(truth))
    scored = _cross_fitted(truth, loop, other, held, held, [], folds, moved)
    for k in (0, 1):
        rest = (folds != k)[:, None]
        w = choose_weights(truth, loop, other, held & rest)
        w += choose_group_weights(truth, loop, other, held & rest, [])
        rows = folds == k
        np.testing.assert_array_equal(scored[rows], (w * other + (1 - w) * loop)[rows])
    in_sample, honest = _gain(moved, loop, truth, held), _gain(scored, loop, truth, held)
    assert in_sample > 0 and honest < 0, (in_sample, honest)


def test_a_fit_scores_its_passes_out_of_sample_when_asked(monkeypatch):
    """``GAIN_FOLDS`` only decides which passes are kept: with 3 folds a fit keeps the same
    Gaussian step and the same weights for every pass it keeps (its first passes are the
    one-fold fit's), and it is as reproducible."""
    import revml.blending as blending

    x = _step_table()
    damaged, _ = _damaged(x)
    one = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    monkeypatch.setattr(blending, "GAIN_FOLDS", 3)
    monkeypatch.setattr(blending, "MIN_PASS_GAIN", 0.0)
    three = ReverseImputer(**FAST).fit(damaged)
    weights = three.fitted_blend_weights_
    kept = min(len(one), len(weights))
    assert kept >= 2  # the Gaussian step and at least one pass of trees
    np.testing.assert_array_equal(weights[:kept], one[:kept])
    again = ReverseImputer(**FAST).fit(damaged)
    np.testing.assert_array_equal(again.transform(damaged), three.transform(damaged))


def test_a_gaussian_step_that_gains_too_little_is_not_taken(monkeypatch):
    """With a bar no step can clear, the fit's Gaussian weights are all 0 and its trees
    start from the loop; with none (the default) the step is taken."""
    import revml.blending as blending

    x = _step_table()
    damaged, _ = _damaged(x)
    taken = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    assert taken[0].any()
    monkeypatch.setattr(blending, "MIN_GAUSSIAN_GAIN", 1.0)  # a 100% lower error: never
    dropped = ReverseImputer(**FAST).fit(damaged).fitted_blend_weights_
    assert not dropped[0].any() and len(dropped) >= 2
