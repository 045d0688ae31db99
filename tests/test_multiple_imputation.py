"""Restarts of the reverse loop: multiple imputation, the per-value spread, combining."""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from asserts import assert_close

from revml import ReverseImputer, masks
from revml.cli import main
from revml.fitting import seeds
from revml.persistence import CONFIG_FILE, _canonical, _sha256
from revml.reference import init_noise, restart_rows, restart_seed, row_keys
from revml.reverse import impute_restarts, impute_reverse, initial_values

#: Small and quick; dropout > 0 so that restarts differ in their masks as well as their start.
FAST = {
    "hidden": (12,),
    "bottleneck": 3,
    "epochs": 5,
    "n_steps": 15,
    "dropout": 0.1,
    "n_restarts": 1,
    "random_state": 0,
    "backend": "reference",
    "device": "cpu",
}

#: Different batch shapes block the GEMMs differently: float32 rounding, as in
#: test_imputer's batch-size test, scaled by the data (values around 3, spread below 10).
BATCH_TOL = {"rtol": 1e-4, "atol": 1e-5}


def low_rank(n=90, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 3.0
    miss = masks.mcar(x.shape, 0.25, seed=seed + 1)
    return x, miss, masks.apply(x, miss)


@pytest.fixture(scope="module")
def fitted():
    """The loop's restarts, without the blend: on this low-rank normal table the blend's
    Gaussian step takes the whole weight, which moves every restart to the one
    conditional mean (revml.trees.TreeBlend) and would leave them nothing to differ in."""
    _, miss, x_nan = low_rank()
    return ReverseImputer(blend="none", **FAST).fit(x_nan), miss, x_nan


def restarts(imp: ReverseImputer, **params) -> ReverseImputer:
    """A copy of the fitted imputer with new transform-time parameters (no refit)."""
    return copy.deepcopy(imp).set_params(**params)


# ---------------------------------------------------------------------- the reference


def test_noise_is_keyed_by_row_and_column_not_by_batch():
    rows = torch.arange(1000, 1050)
    whole = init_noise(7, rows, 9, restart=2)
    parts = torch.cat(
        [init_noise(7, rows[a:b], 9, restart=2) for a, b in [(0, 1), (1, 33), (33, 50)]]
    )
    assert whole.dtype == torch.float32 and whole.shape == (50, 9)
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, init_noise(7, rows, 9, restart=3))
    assert not torch.equal(whole, init_noise(8, rows, 9, restart=2))
    big = init_noise(0, torch.arange(40_000), 5, restart=1).double()
    # 200k draws: the mean is within 4.5 standard errors (0.01) of 0, the sd of 1.
    assert abs(big.mean().item()) < 0.01 and abs(big.std().item() - 1.0) < 0.01
    assert abs(torch.corrcoef(big[:, :2].T)[0, 1].item()) < 0.02  # columns independent


def test_restart_seed_keeps_restart_zero_and_separates_the_others():
    assert restart_seed(12345, 0) == 12345
    seeds = {restart_seed(12345, r) for r in range(1, 200)}
    assert len(seeds) == 199 and 12345 not in seeds
    assert all(0 <= s < 2**63 for s in seeds)
    with pytest.raises(ValueError, match="restart"):
        restart_seed(0, -1)


def test_a_restart_starts_from_the_noisy_clamped_start(fitted):
    """With no steps the loop returns its start: the init plus restart_noise * noise."""
    imp, _, x_nan = fitted
    sc = imp.scaler_
    xs = torch.from_numpy((x_nan - sc.offset) / sc.span).float()
    miss = torch.isnan(xs)
    means, medians = torch.from_numpy(sc.means), torch.from_numpy(sc.medians)
    lo, hi = torch.from_numpy(sc.clip_lo), torch.from_numpy(sc.clip_hi)
    cfg = replace(restarts(imp, n_steps=0).reverse_config(seed=5), restart_noise=0.3)
    common = dict(init="median", means=means, medians=medians, lo=lo, hi=hi)
    common.update(backend="reference", batch_size=32, device=torch.device("cpu"), clean=False)
    x0 = initial_values(imp.autoencoder_, xs, miss, "median", means, medians)
    plain = impute_reverse(imp.autoencoder_, xs, miss, cfg, **common).x
    assert torch.equal(plain, x0)  # restart 0 ignores the noise
    got = impute_reverse(imp.autoencoder_, xs, miss, cfg, **common, row_offset=10, restart=2).x
    noise = init_noise(5, torch.arange(10, 10 + len(xs)), xs.shape[1], restart=2)
    want = torch.where(miss, torch.minimum(torch.maximum(x0 + 0.3 * noise, lo), hi), x0)
    assert torch.equal(got, want)
    assert torch.equal(got[~miss], xs[~miss]) and not torch.equal(got, x0)


def test_restart_rows_give_each_restart_its_own_masks_under_one_seed():
    """The keys restarts share a batch with hash to exactly their own seed's at every
    step, for 63-bit seeds and row indices past 2**32 (the hash reads their low 32 bits)."""
    rng = np.random.default_rng(4)
    rows = torch.from_numpy(rng.integers(0, 2**40, size=257))
    for seed in (0, 7, 2**40 + 3, 2**63 - 1):
        for r in (0, 1, 2, 9):
            keys = restart_rows(seed, rows, r)
            assert keys.dtype == torch.int64 and int(keys.min()) >= 0 and int(keys.max()) < 2**32
            for step in (1, 2, 76, 91):
                want = row_keys(restart_seed(seed, r), rows, step)
                assert torch.equal(row_keys(seed, keys, step), want)
    assert torch.equal(restart_rows(5, rows, 0), rows & 0xFFFFFFFF)


@pytest.mark.parametrize("batch_size", [8, 32, 1000])
def test_restarts_side_by_side_are_each_restart_alone(fitted, batch_size):
    """One call of three restarts gives each the values, losses and clean pass it has
    alone (its start, its masks), up to the float rounding of a GEMM's row count, in
    batches of any size; observed entries bit-identical."""
    imp, _, x_nan = fitted
    sc = imp.scaler_
    xs = torch.from_numpy((x_nan - sc.offset) / sc.span).float()
    miss = torch.isnan(xs)
    cfg = replace(restarts(imp).reverse_config(seed=3), restart_noise=0.2, clean_samples=4)
    common = dict(
        init="median",
        means=torch.from_numpy(sc.means),
        medians=torch.from_numpy(sc.medians),
        lo=torch.from_numpy(sc.clip_lo),
        hi=torch.from_numpy(sc.clip_hi),
        backend="reference",
        device=torch.device("cpu"),
        clean=True,
        row_offset=4,
    )
    together = impute_restarts(
        imp.autoencoder_, xs, miss, cfg, restarts=[0, 1, 2], batch_size=batch_size, **common
    )
    assert len(together) == 3
    for r, got in enumerate(together):
        alone = impute_reverse(imp.autoencoder_, xs, miss, cfg, restart=r, batch_size=64, **common)
        assert_close(got.x, alone.x, **BATCH_TOL, name=f"restart {r}")
        assert_close(got.x_clean, alone.x_clean, **BATCH_TOL, name=f"restart {r} clean")
        assert_close(got.loss, alone.loss, **BATCH_TOL, name=f"restart {r} loss")
        assert torch.equal(got.x_clean[~miss], xs[~miss])
    assert not torch.allclose(together[0].x, together[1].x)  # they are different restarts
    with pytest.raises(ValueError, match="restarts"):
        impute_restarts(imp.autoencoder_, xs, miss, cfg, restarts=[], batch_size=8, **common)


# ---------------------------------------------------------------------- the imputer


def test_one_restart_is_bit_identical_to_the_plain_imputer(fitted):
    imp, _, x_nan = fitted
    plain = imp.transform_details(x_nan)
    one = restarts(imp, n_restarts=1, restart_noise=0.5, combine="lowest_loss")
    got = one.transform_details(x_nan)
    assert np.array_equal(got.X, plain.X) and np.array_equal(got.loss, plain.loss)
    assert np.array_equal(got.X_before_clean, plain.X_before_clean)
    assert got.std is None and got.imputations is None and got.restart_loss is None
    # Restart 0 of any number of restarts is the plain loop.
    assert np.array_equal(one.multiple_imputations(x_nan, 1)[0], plain.X)
    assert np.array_equal(one.multiple_imputations(x_nan, 3)[0], plain.X)


def test_restarts_are_deterministic_for_a_seed(fitted):
    imp, _, x_nan = fitted
    a = restarts(imp, n_restarts=3).transform_details(x_nan)
    b = restarts(imp, n_restarts=3).transform_details(x_nan)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.std, b.std)
    assert all(np.array_equal(p, q) for p, q in zip(a.imputations, b.imputations, strict=True))
    assert not np.array_equal(a.imputations[1], a.imputations[2])
    other = restarts(imp, n_restarts=3, random_state=1).transform_details(x_nan)
    assert not np.array_equal(other.imputations[1], a.imputations[1])
    # A longer list of imputations begins with the shorter one.
    five = restarts(imp).multiple_imputations(x_nan, 5)
    assert all(np.array_equal(p, q) for p, q in zip(a.imputations, five[:3], strict=False))


def test_restarts_do_not_depend_on_the_batch_size(fitted):
    imp, _, x_nan = fitted
    full = restarts(imp, n_restarts=3, batch_size=256).transform_details(x_nan)
    for bs in (1, 7):
        got = restarts(imp, n_restarts=3, batch_size=bs).transform_details(x_nan)
        for name, a, b in [("X", got.X, full.X), ("std", got.std, full.std)]:
            assert_close(torch.from_numpy(a), torch.from_numpy(b), **BATCH_TOL, name=name)
        for r, (a, b) in enumerate(zip(got.imputations, full.imputations, strict=True)):
            assert_close(torch.from_numpy(a), torch.from_numpy(b), **BATCH_TOL, name=f"r{r}")


def test_row_offset_split_equals_one_call(fitted):
    imp, _, x_nan = fitted
    imp3 = restarts(imp, n_restarts=3)
    full = imp3.transform_details(x_nan)
    halves = [imp3.transform_details(x_nan[a:b], row_offset=a) for a, b in [(0, 41), (41, 90)]]
    for field in ("X", "std"):
        got = np.concatenate([getattr(h, field) for h in halves])
        assert_close(torch.from_numpy(got), torch.from_numpy(getattr(full, field)), **BATCH_TOL)
    for r in range(3):
        got = np.concatenate([h.imputations[r] for h in halves])
        assert_close(torch.from_numpy(got), torch.from_numpy(full.imputations[r]), **BATCH_TOL)
    shifted = imp3.transform_details(x_nan[41:], row_offset=0)
    assert not np.allclose(shifted.imputations[1], full.imputations[1][41:], atol=1e-5)


def test_observed_entries_never_change_and_std_is_zero_there(fitted):
    imp, miss, x_nan = fitted
    d = restarts(imp, n_restarts=4).transform_details(x_nan)
    for out in [d.X, d.X_before_clean, *d.imputations]:
        assert out.dtype == x_nan.dtype and np.array_equal(out[~miss], x_nan[~miss])
        assert np.isfinite(out).all()
    assert d.std.shape == x_nan.shape and d.std.dtype == x_nan.dtype
    assert (d.std[~miss] == 0).all() and (d.std[miss] > 0).any() and (d.std >= 0).all()


def test_std_is_the_sample_std_over_the_imputations(fitted):
    imp, _, x_nan = fitted
    k = 4
    imp4 = restarts(imp, n_restarts=k)
    out, std = imp4.transform(x_nan, return_std=True)
    stack = np.stack(imp4.multiple_imputations(x_nan))
    assert stack.shape == (k, *x_nan.shape)  # default: n_restarts imputations
    np.testing.assert_allclose(std, np.std(stack, axis=0, ddof=1), rtol=1e-12, atol=0)
    # ddof=1, not numpy's default 0.
    np.testing.assert_allclose(std, np.std(stack, axis=0) * math.sqrt(k / (k - 1)), rtol=1e-12)
    assert np.array_equal(out, imp4.transform(x_nan))
    # float32 input: float32 imputations and spread.
    out32, std32 = imp4.transform(x_nan.astype(np.float32), return_std=True)
    assert out32.dtype == std32.dtype == np.float32
    np.testing.assert_allclose(std32, std, rtol=1e-3, atol=1e-5)


def test_mean_combine_is_the_mean_of_the_imputations(fitted):
    imp, _, x_nan = fitted
    d = restarts(imp, n_restarts=3, combine="mean").transform_details(x_nan)
    np.testing.assert_allclose(d.X, np.mean(d.imputations, axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d.loss, d.restart_loss.mean(axis=0), rtol=1e-6)


def test_lowest_loss_takes_each_rows_best_restart_from_separate_runs(fitted):
    imp, _, x_nan = fitted
    # the loop's restarts alone (a fitted tree blend would move them after the loop)
    imp3 = restarts(imp, n_restarts=3, combine="lowest_loss", blend="none")
    d = imp3.transform_details(x_nan)
    # Each restart run on its own, through the loop's own function.
    sc = imp.scaler_
    xs = torch.from_numpy((x_nan - sc.offset) / sc.span).float()
    cfg = imp3.reverse_config(seeds(imp3.random_state)[1])
    runs = [
        impute_reverse(
            imp.autoencoder_,
            xs,
            torch.isnan(xs),
            cfg,
            init=imp3.init,
            means=torch.from_numpy(sc.means),
            medians=torch.from_numpy(sc.medians),
            lo=torch.from_numpy(sc.clip_lo),
            hi=torch.from_numpy(sc.clip_hi),
            backend="reference",
            batch_size=4096,
            device=torch.device("cpu"),
            clean=True,
            restart=r,
            direct_fill=imp3.state_.fill(imp3.fill),
        )
        for r in range(3)
    ]
    losses = np.stack([run.loss.numpy() for run in runs])
    assert np.array_equal(d.restart_loss, losses)
    for r, run in enumerate(runs):
        values = run.x_clean.double().numpy() * sc.span + sc.offset
        np.testing.assert_allclose(d.imputations[r], np.where(np.isnan(x_nan), values, x_nan))
    best = losses.argmin(axis=0)
    assert len(set(best.tolist())) > 1  # the choice is not the same restart everywhere
    assert np.array_equal(d.X, np.stack(d.imputations)[best, np.arange(len(x_nan))])
    assert np.array_equal(d.loss, losses.min(axis=0))


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("compile", marks=pytest.mark.slow),  # ~10 s of compiling on 2 cores
        pytest.param("triton", marks=pytest.mark.kernels),
    ],
)
def test_every_backend_runs_the_same_restarts(backend):
    """Restarts change only the start and the dropout seed, which every path takes."""
    from revml.backends import triton_available

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if backend == "triton" and not triton_available(device):
        pytest.skip("Triton kernels need a CUDA GPU or TRITON_INTERPRET=1")
    _, _, x_nan = low_rank(n=21, d=5)
    params = {**FAST, "n_steps": 4, "n_restarts": 3, "batch_size": 8, "device": device}
    imp = ReverseImputer(**params).fit(x_nan)
    ref = imp.transform_details(x_nan)
    got = restarts(imp, backend=backend).transform_details(x_nan)
    assert got.backend == backend
    # Float32 paths that order their sums differently from autograd, over 4 Adam steps
    # of size reverse_lr: a few float32 roundings of values near 1 (data around 3).
    for r, (a, b) in enumerate(zip(got.imputations, ref.imputations, strict=True)):
        assert_close(torch.from_numpy(a), torch.from_numpy(b), **BATCH_TOL, name=f"r{r}")


def test_a_table_with_categories():
    rng = np.random.default_rng(3)
    n = 80
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "a": z + 0.2 * rng.normal(size=n),
            "b": 2 * z + 0.2 * rng.normal(size=n),
            "n": pd.array(np.round(3 + 2 * z).astype(int), dtype="Int64"),
            "c": np.where(z > 0.3, "hi", np.where(z < -0.3, "lo", "mid")),
            "f": pd.array(z > 0, dtype="boolean"),
            "e": pd.array([None] * n, dtype="Float64"),
        },
        index=pd.RangeIndex(100, 100 + n, name="id"),
    )
    hide = rng.random((n, 5)) < 0.2
    for j, col in enumerate(["a", "b", "n", "c", "f"]):
        df.loc[df.index[hide[:, j]], col] = None
    with pytest.warns(RuntimeWarning, match="no observed value"):
        imp = ReverseImputer(**{**FAST, "dropout": 0.3, "n_restarts": 4}).fit(df)
    out, std = imp.transform(df, return_std=True)
    plain = restarts(imp, n_restarts=1).transform(df)
    assert out.dtypes.equals(plain.dtypes) and out.index.equals(df.index)
    assert isinstance(std, pd.DataFrame) and std.index.equals(df.index)
    assert list(std.columns) == list(df.columns) and (std.dtypes == np.float64).all()
    missing = df.isna().to_numpy()
    assert (std.to_numpy()[~missing] == 0).all()
    assert std["e"].isna().all() and out["e"].isna().all()  # never imputed, no spread
    imps = imp.multiple_imputations(df)
    assert len(imps) == 4 and all(isinstance(f, pd.DataFrame) for f in imps)
    for f in imps:
        assert f.dtypes.equals(plain.dtypes)
        for col in df.columns:
            keep = df[col].notna().to_numpy()
            assert f[col][keep].equals(df[col][keep]), col
    for col in ["a", "b", "n"]:
        values = np.stack([f[col].to_numpy(dtype=np.float64) for f in imps])
        np.testing.assert_allclose(std[col], np.std(values, axis=0, ddof=1), rtol=1e-12)
    for col in ["c", "f"]:
        rows = df[col].isna().to_numpy()
        picks = np.stack([f[col].to_numpy(dtype=object)[rows] for f in imps])
        chosen = out[col].to_numpy(dtype=object)[rows]
        np.testing.assert_allclose(std[col][rows], (picks != chosen).mean(axis=0))
        # Where all restarts agree, the combined category is theirs.
        agree = (picks == picks[0]).all(axis=0)
        assert (chosen[agree] == picks[0][agree]).all()
    assert set(out["c"]) <= {"hi", "lo", "mid"}
    assert (std.to_numpy()[missing & ~np.isnan(std.to_numpy())] >= 0).all()
    # Array input to a table-fitted imputer: arrays out.
    with pytest.warns(UserWarning, match="valid feature names"):
        _, arr_std = imp.transform(df.to_numpy(dtype=object), return_std=True)
    assert isinstance(arr_std, np.ndarray) and arr_std.shape == df.shape
    np.testing.assert_array_equal(arr_std, std.to_numpy())


def test_set_output_pandas_wraps_the_imputed_data(fitted):
    imp, miss, x_nan = fitted
    imp3 = restarts(imp, n_restarts=3).set_output(transform="pandas")
    out, std = imp3.transform(x_nan, return_std=True)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == [f"x{i}" for i in range(6)]
    assert isinstance(std, np.ndarray) and std.shape == x_nan.shape
    assert isinstance(imp3.transform(x_nan), pd.DataFrame)
    frame = pd.DataFrame(x_nan, columns=list("abcdef"))
    refit = restarts(imp, n_restarts=2).set_output(transform="pandas").fit(frame)
    out, std = refit.transform(frame, return_std=True)
    assert isinstance(std, pd.DataFrame) and list(std.columns) == list("abcdef")
    assert (std.to_numpy()[miss] >= 0).all() and (std.to_numpy()[~miss] == 0).all()


def test_torch_tensors_stay_tensors(fitted):
    imp, miss, x_nan = fitted
    t = torch.from_numpy(x_nan).float()
    imp3 = restarts(imp, n_restarts=3)
    out, std = imp3.transform(t, return_std=True)
    assert isinstance(out, torch.Tensor) and isinstance(std, torch.Tensor)
    assert std.dtype == torch.float32 and std.device == t.device
    m = torch.from_numpy(miss)
    assert (std[~m] == 0).all() and (std[m] > 0).any()
    imps = imp3.multiple_imputations(t)
    assert all(isinstance(i, torch.Tensor) and torch.equal(i[~m], t[~m]) for i in imps)


def test_no_missing_value_has_zero_spread(fitted):
    imp, _, _ = fitted
    x, _, _ = low_rank()
    out, std = restarts(imp, n_restarts=3).transform(x, return_std=True)
    assert np.array_equal(out, x) and (std == 0).all()
    assert all(np.array_equal(i, x) for i in restarts(imp).multiple_imputations(x, 2))


def test_save_load_round_trips_the_restart_parameters(fitted, tmp_path):
    imp, _, x_nan = fitted
    params = {"n_restarts": 3, "restart_noise": 0.2, "combine": "lowest_loss"}
    imp3 = restarts(imp, **params)
    folder = imp3.save(tmp_path / "m")
    loaded = ReverseImputer.load(folder)
    assert {k: loaded.get_params()[k] for k in params} == params
    a, b = imp3.transform(x_nan, return_std=True), loaded.transform(x_nan, return_std=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # A file written before restarts existed loads as it was saved: one run of the loop.
    config = json.loads((folder / CONFIG_FILE).read_text())
    for key in params:
        del config["params"][key]
    config.pop("config_sha256")
    config["config_sha256"] = _sha256(_canonical(config))
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    old = ReverseImputer.load(folder)
    assert (old.n_restarts, old.restart_noise, old.combine) == (1, 0.1, "mean")
    assert np.array_equal(old.transform(x_nan), imp.transform(x_nan))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_restarts": 0}, "n_restarts must be an integer >= 1"),
        ({"n_restarts": 2.5}, "n_restarts must be an integer >= 1"),
        ({"n_restarts": True}, "n_restarts must be an integer >= 1"),
        ({"n_restarts": "3"}, "n_restarts must be an integer >= 1"),
        ({"restart_noise": -0.1}, "restart_noise must be a finite number >= 0"),
        ({"restart_noise": float("nan")}, "restart_noise must be a finite number >= 0"),
        ({"restart_noise": float("inf")}, "restart_noise must be a finite number >= 0"),
        ({"restart_noise": "0.1"}, "restart_noise must be a finite number >= 0"),
        ({"combine": "median"}, "unknown combine 'median'; combine must be one of"),
    ],
)
def test_bad_parameters_are_named(fitted, params, match):
    imp, _, x_nan = fitted
    with pytest.raises(ValueError, match=match):
        ReverseImputer(**{**FAST, **params}).fit(x_nan)
    with pytest.raises(ValueError, match=match):  # also when set after fit
        restarts(imp, **params).transform(x_nan)


def test_misuse_gets_a_clear_error(fitted):
    imp, _, x_nan = fitted
    with pytest.raises(ValueError, match=r"set n_restarts >= 2"):
        imp.transform(x_nan, return_std=True)
    direct = restarts(imp, strategy="direct", n_restarts=3)
    with pytest.raises(ValueError, match="strategy='direct' is one deterministic pass"):
        direct.transform(x_nan, return_std=True)
    with pytest.raises(ValueError, match="strategy='direct'"):
        direct.multiple_imputations(x_nan)
    # The direct strategy has no restarts: transform runs its one pass.
    one_pass = restarts(imp, strategy="direct").transform(x_nan)
    assert np.array_equal(direct.transform(x_nan), one_pass)
    assert direct.transform_details(x_nan).std is None
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_imputations must be an integer >= 1"):
            imp.multiple_imputations(x_nan, bad)
    with pytest.warns(UserWarning, match="1 feature"):
        single = ReverseImputer(**{**FAST, "n_restarts": 3}).fit(x_nan[:, :1])
    with pytest.raises(ValueError, match="single feature"):
        single.transform(x_nan[:, :1], return_std=True)
    with pytest.warns(UserWarning, match="all run the same deterministic loop"):
        restarts(imp, n_restarts=2, restart_noise=0.0, dropout=0.0).transform(x_nan)


def test_default_number_of_imputations(fitted):
    imp, _, x_nan = fitted
    assert len(restarts(imp, n_restarts=1).multiple_imputations(x_nan)) == 5
    assert len(restarts(imp, n_restarts=3).multiple_imputations(x_nan)) == 3


# ---------------------------------------------------------------------- command line

CLI_FAST = ["--epochs", "2", "--n-steps", "5", "--hidden", "8", "--bottleneck", "2", "--quiet"]


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 45
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "id": [f"p{i:03d}" for i in range(n)],
            "x": np.round(z + 0.1 * rng.normal(size=n), 3),
            "y": np.round(2 * z + 0.1 * rng.normal(size=n), 3),
            "c": np.where(z > 0, "hi", "lo"),
        }
    ).astype(object)
    hide = rng.random((n, 3)) < 0.2
    for j, col in enumerate(["x", "y", "c"]):
        df.loc[hide[:, j], col] = None
    df.loc[0, "id"] = None  # an excluded column's missing cell stays missing
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


def test_cli_restarts_and_std_out(csv, tmp_path):
    out, std = tmp_path / "out.csv", tmp_path / "std.csv"
    common = ["--exclude", "id", *CLI_FAST]
    argv = ["impute", str(csv), "-o", str(out), "--restarts", "3", "--std-out", str(std)]
    assert main([*argv, *common]) == 0
    raw = pd.read_csv(csv)
    filled, spread = pd.read_csv(out), pd.read_csv(std)
    assert list(spread.columns) == list(raw.columns) and len(spread) == len(raw)
    assert not filled[["x", "y", "c"]].isna().any().any()
    missing = raw.isna().to_numpy()
    assert (spread.to_numpy()[~missing] == 0).all()
    assert np.isnan(spread.loc[0, "id"])  # not imputed, no spread
    model_cells = raw[["x", "y", "c"]].isna().to_numpy()
    values = spread[["x", "y", "c"]].to_numpy()[model_cells]
    assert (values >= 0).all() and (values > 0).any()
    assert set(spread["c"][raw["c"].isna()]) <= {0, 1 / 3, 2 / 3, 1}


def test_cli_chunks_give_the_in_memory_spread(csv, tmp_path):
    """Restarts are keyed by row like the dropout: chunks see the same ones."""
    model = tmp_path / "model"
    assert main(["fit", str(csv), "-o", str(model), "--exclude", "id", *CLI_FAST]) == 0
    base = ["impute", str(csv), "--model", str(model), "--restarts", "3", "--quiet"]
    whole, whole_std = tmp_path / "whole.csv", tmp_path / "whole_std.csv"
    assert main([*base, "-o", str(whole), "--std-out", str(whole_std)]) == 0
    parts, parts_std = tmp_path / "parts.csv", tmp_path / "parts_std.parquet"
    argv = [*base, "-o", str(parts), "--std-out", str(parts_std), "--chunk-rows", "10"]
    assert main([*argv, "--checkpoint", str(tmp_path / "ck")]) == 0
    a, b = pd.read_csv(whole), pd.read_csv(parts)
    spread, chunked = pd.read_csv(whole_std), pd.read_parquet(parts_std)
    assert list(chunked.columns) == list(spread.columns) and len(chunked) == len(spread)
    assert a["c"].tolist() == b["c"].tolist()
    for col in ["x", "y", "c"]:
        np.testing.assert_allclose(chunked[col], spread[col], rtol=1e-4, atol=1e-5)
    for col in ["x", "y"]:
        np.testing.assert_allclose(a[col], b[col], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--restarts", "1", "--std-out", "s.csv"], "--std-out needs --restarts K with K >= 2"),
        (["--restarts", "0"], "--restarts must be >= 1"),
        (["--restarts", "3", "--strategy", "direct", "--std-out", "s.csv"], "--strategy direct"),
        (["--restarts", "3", "--std-out", "s.xlsx"], "xlsx"),
    ],
)
def test_cli_restart_errors(csv, tmp_path, capsys, extra, message):
    argv = ["impute", str(csv), "-o", str(tmp_path / "o.csv"), *CLI_FAST, *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 2
    assert message in capsys.readouterr().err
