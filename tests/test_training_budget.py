"""Training that follows the data (early stopping) and mixed precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from revml import ReverseImputer, imputation
from revml import precision as prec
from revml.blending import numeric_features, validation_cells
from revml.errors import BackendUnavailableError
from revml.fitting import seeds, split_validation
from revml.model import MLPAutoencoder
from revml.reference import ReverseConfig, reverse_grad
from revml.training import TrainConfig, Validation


def _table(n: int = 400, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 0.1 * rng.normal(size=(n, d))
    x[rng.random(x.shape) < 0.15] = np.nan
    return x


FAST = {"random_state": 0, "n_steps": 5, "n_restarts": 1, "clean_samples": 1}


@pytest.fixture(autouse=True)
def small_tables_stop_early(monkeypatch, request):
    """The default starts early stopping at 10,000 rows; these tests run it on 400."""
    if "small_data" not in request.node.name:
        monkeypatch.setattr("revml.fitting.EARLY_STOP_MIN_ROWS", 200)


def test_early_stopping_stops_keeps_the_best_weights_and_says_why():
    x = _table()
    imp = ReverseImputer(**FAST).fit(x)
    curve = imp.validation_curve_
    assert curve and imp.stop_reason_.startswith("validation loss stopped improving")
    best = min(curve, key=lambda c: c[1])
    assert imp.best_update_ == best[0] < imp.n_updates_
    # the kept weights are the best-scoring ones: re-scoring them gives the best score
    train_seed = seeds(0)[0]
    _, held_out = split_validation(len(x), train_seed)
    xs = imp.scaler_.scale(torch.from_numpy(x))
    # the blend's validation cells were hidden from training, its scores included
    held = validation_cells(torch.from_numpy(x), numeric_features(None, x.shape[1]), train_seed)
    xs = xs.masked_fill(held, float("nan"))
    cfg = TrainConfig(seed=train_seed)
    assert Validation.draw(xs[held_out], cfg).loss(imp.autoencoder_) == pytest.approx(best[1])
    fixed = ReverseImputer(**FAST, early_stopping=False).fit(x)
    assert fixed.n_updates_ > imp.n_updates_ and fixed.validation_curve_ == []
    assert fixed.stop_reason_.startswith("fixed length")


def test_epochs_forces_a_fixed_length():
    x = _table()
    imp = ReverseImputer(**FAST, epochs=3, train_batch_size=32).fit(x)
    assert imp.n_updates_ == 3 * math.ceil(len(x) / 32) and imp.validation_curve_ == []


def test_a_blended_table_trains_the_short_budget(monkeypatch):
    """A table the tree blend also imputes trains BLENDED_TABLE_UPDATES; without the blend
    the same table trains MASKED_UPDATES (budgets shrunk here so the fits take a second)."""
    monkeypatch.setattr("revml.training.BLENDED_TABLE_UPDATES", 48)
    monkeypatch.setattr("revml.training.MASKED_UPDATES", 96)
    x = _table(n=64, d=5)  # batches of 16: 4 updates an epoch, 10 epochs at least
    assert ReverseImputer(**FAST).fit(x).n_updates_ == 48
    assert ReverseImputer(**FAST, blend="none").fit(x).n_updates_ == 96


def test_small_data_trains_the_sized_length():
    imp = ReverseImputer(**FAST).fit(_table(n=400))  # below the default 10,000 rows
    assert imp.validation_curve_ == [] and imp.stop_reason_.startswith("fixed length")


def test_early_stopping_is_reproducible_and_saved(tmp_path):
    x = _table()
    a = ReverseImputer(**FAST).fit(x)
    b = ReverseImputer(**FAST).fit(x)
    assert a.state_.fingerprint() == b.state_.fingerprint()
    loaded = ReverseImputer.load(a.save(tmp_path / "m"))
    assert loaded.validation_curve_ == a.validation_curve_
    assert (loaded.best_update_, loaded.stop_reason_) == (a.best_update_, a.stop_reason_)


def test_early_stopping_keeps_accuracy_on_a_low_rank_table():
    full = _table(n=600)
    truth = np.where(np.isnan(full), 0.0, full)
    rng = np.random.default_rng(3)
    hidden = (rng.random(full.shape) < 0.2) & ~np.isnan(full)
    damaged = np.where(hidden, np.nan, full)
    errors = {}
    for es in (True, False):
        out = ReverseImputer(**FAST, early_stopping=es).fit_transform(damaged)
        errors[es] = float(np.sqrt(np.mean((out - truth)[hidden] ** 2)))
    assert errors[True] <= 1.05 * errors[False], errors


# ---------------------------------------------------------------------- precision


def test_fast_bfloat16_is_read_from_the_cpu(monkeypatch):
    monkeypatch.setattr(prec, "_cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert prec.fast_bfloat16(torch.device("cpu"))
    monkeypatch.setattr(prec, "_cpu_flags", lambda: frozenset({"avx2", "sse4_2"}))
    assert not prec.fast_bfloat16(torch.device("cpu"))
    monkeypatch.setattr(prec, "AUTO_BFLOAT16", True)
    assert prec.resolve("auto", torch.device("cpu")) == "float32"  # no fast bf16 here
    assert prec.resolve("bfloat16", torch.device("cpu")) == "bfloat16"


def test_auto_runs_the_loop_in_bfloat16_only_where_it_pays(monkeypatch):
    cpu = torch.device("cpu")
    big = 10 * prec.BF16_MIN_GEMM
    monkeypatch.setattr(prec, "fast_bfloat16", lambda device: True)
    assert prec.resolve("auto", cpu, big, stage="loop") == "bfloat16"
    assert prec.resolve("auto", cpu, big, stage="train") == "float32"  # training: measured worse
    assert prec.resolve("auto", cpu, big, stage="loop", backend="triton") == "float32"
    assert prec.resolve("auto", cpu, prec.BF16_MIN_GEMM - 1, stage="loop") == "float32"
    assert prec.resolve("float32", cpu, big, stage="loop") == "float32"
    with pytest.raises(ValueError, match="stage"):
        prec.resolve("auto", cpu, big, stage="transform")
    monkeypatch.setattr(prec, "fast_bfloat16", lambda device: False)
    assert prec.resolve("auto", cpu, big, stage="loop") == "float32"


def test_the_network_decides_the_loop_precision_not_the_rows(monkeypatch):
    """A network large enough for bfloat16 imputes one row as it imputes them all."""
    monkeypatch.setattr(prec, "fast_bfloat16", lambda device: True)
    rng = np.random.default_rng(4)
    d = 160  # 160 x 512 multiply-adds a row: past BF16_MIN_GEMM over DECIDING_ROWS rows
    x = (rng.normal(size=(64, 4)) @ rng.normal(size=(4, d))).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    imp = ReverseImputer(**FAST, epochs=2, hidden=(512,), blend="none", backend="reference")
    imp.fit(x)
    assert imp.reverse_config().precision == "bfloat16"
    used, config = [], imputation.reverse_config

    def spy(*args, **kwargs):
        cfg = config(*args, **kwargs)
        used.append(cfg.precision)
        return cfg

    monkeypatch.setattr(imputation, "reverse_config", spy)
    whole = imp.transform(x)
    parts = np.concatenate([imp.transform(x[:1]), imp.transform(x[1:40]), imp.transform(x[40:])])
    assert used == ["bfloat16"] * 4  # a one-row call too
    assert np.array_equal(whole[~np.isnan(x)], x[~np.isnan(x)])
    # Only float rounding differs: BLAS blocks GEMMs per shape (float32 accumulation).
    np.testing.assert_allclose(parts, whole, rtol=1e-3, atol=1e-4)


#: bfloat16 keeps 8 significant bits: each product's inputs round with relative error up to
#: 2**-9 = 2e-3, and the input gradient passes ~4 such roundings per layer pair (input,
#: weights, activations, back through the transposed weights). Measured worst rows:
#: 3e-3 to 9e-3 on the shapes below; the bound is 4x the largest.
BF16_GRAD_RTOL = 3.5e-2
BF16_LOSS_RTOL = 1.5e-2


@pytest.mark.parametrize(("d", "hidden", "code"), [(37, (19,), 7), (30, (64, 64), 16)])
def test_bfloat16_gradient_against_the_float64_reference(d, hidden, code):
    torch.manual_seed(0)
    ae = MLPAutoencoder(d, hidden=hidden, bottleneck=code).eval().requires_grad_(False)
    ae64 = MLPAutoencoder(d, hidden=hidden, bottleneck=code).double().requires_grad_(False)
    ae64.load_state_dict(ae.state_dict())
    x, miss, rows = torch.rand(64, d), torch.rand(64, d) < 0.3, torch.arange(64)
    got, loss = reverse_grad(ae, x, miss, rows, 3, ReverseConfig(precision="bfloat16"))
    want, loss64 = reverse_grad(ae64, x.double(), miss, rows, 3, ReverseConfig())
    assert got.dtype == torch.float32 and loss.dtype == torch.float32
    rel = (got.double() - want).norm(dim=1) / want.norm(dim=1)
    assert rel.max() < BF16_GRAD_RTOL, rel.max()
    assert ((loss.double() - loss64).abs() / loss64.abs()).max() < BF16_LOSS_RTOL


def test_bfloat16_imputation_keeps_observed_values_and_float32():
    x = _table().astype(np.float32)
    imp = ReverseImputer(**FAST, epochs=5, precision="bfloat16").fit(x)
    out = imp.transform(x)
    seen = ~np.isnan(x)
    assert out.dtype == np.float32 and np.array_equal(out[seen], x[seen])
    ref = imp.set_params(precision="float32").transform(x)
    scale = np.nanmax(x, 0) - np.nanmin(x, 0)
    assert np.max(np.abs(out - ref) / scale) < 0.05  # same model, bf16 loop: close


def test_the_triton_path_refuses_bfloat16():
    from revml.ops import triton_step

    ae = MLPAutoencoder(6, hidden=(4,), bottleneck=2)
    x, miss = torch.rand(3, 6), torch.rand(3, 6) < 0.3
    with pytest.raises(BackendUnavailableError, match="Triton kernels run float32"):
        cfg = ReverseConfig(precision="bfloat16")
        triton_step(ae, x, miss, torch.zeros_like(x), torch.zeros_like(x), torch.arange(3), 1, cfg)
