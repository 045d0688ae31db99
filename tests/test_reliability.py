"""revml's promises (README "Promises"), each proven here on tiny autoencoders.

1. Observed values come back bit-identical and the input is never modified.
2. No NaN or inf is ever returned for a missing entry; divergence is a warning or an error.
3. The bad-input matrix: each case is a clear error or a documented behaviour.
4. Determinism: same seed, same bits; batch size changes only rounding; save/load is exact.
6. Model files are data: safetensors + JSON, never code.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from asserts import assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from revml import ReverseImputer
from revml.persistence import CONFIG_FILE, MODEL_FILE, _canonical
from revml.training import TrainingDivergedError

TINY = {
    "hidden": (4,),
    "bottleneck": 2,
    "epochs": 2,
    "n_steps": 3,
    "random_state": 0,
    "backend": "reference",
    "device": "cpu",
}
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def data(n=24, d=4, seed=0, rate=0.25):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 2.0
    x[rng.random(x.shape) < rate] = np.nan
    return x


_FITTED: dict = {}


def fitted(d: int, **params) -> ReverseImputer:
    """One tiny imputer per (d, params), fitted once for the whole module."""
    key = (d, tuple(sorted(params.items())))
    if key not in _FITTED:
        _FITTED[key] = ReverseImputer(**{**TINY, **params}).fit(data(d=d))
    return _FITTED[key]


def bits(a: np.ndarray) -> np.ndarray:
    """The raw bytes of each element: equality here is bit-identity (-0.0 != 0.0)."""
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def assert_promise(X_in, X_before, out, miss: np.ndarray) -> None:
    """Promises 1 and 2 for numpy/tensor/DataFrame input ``X_in`` and output ``out``."""
    if isinstance(X_in, torch.Tensor):
        assert isinstance(out, torch.Tensor) and out.device == X_in.device
        assert torch.equal(X_in.isnan(), X_before.isnan())
        assert torch.equal(X_in.nan_to_num(7.0), X_before.nan_to_num(7.0)), "input modified"
        a, b, o = X_in.cpu().numpy(), None, out.cpu().float().numpy()
        if X_in.dtype == out.dtype:
            b = out.cpu().numpy()
    elif isinstance(X_in, pd.DataFrame):
        pd.testing.assert_frame_equal(X_in, X_before)
        assert out.index.equals(X_in.index) and out.columns.equals(X_in.columns)
        a, b = X_in.to_numpy(), out.to_numpy()
        o = b
    else:
        assert np.array_equal(bits(X_in), bits(X_before)), "input modified"
        a, b = X_in, out
        o = out
    assert np.isfinite(np.asarray(o, dtype=np.float64)).all(), "NaN/inf returned"
    if b is not None and a.dtype == b.dtype:
        assert np.array_equal(bits(a[~miss]), bits(b[~miss])), "observed values changed"
    else:  # dtype changed (int/bool in, float out): values still exact
        assert np.array_equal(np.asarray(a, np.float64)[~miss], np.asarray(o, np.float64)[~miss])


@st.composite
def damaged(draw):
    """A random table with random missing entries, sometimes a whole row or column."""
    n = draw(st.integers(1, 9))
    d = draw(st.sampled_from([2, 3]))
    seed = draw(st.integers(0, 2**16))
    rate = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * 3 + 2
    x[rng.integers(n), rng.integers(d)] = -0.0  # a signed zero must survive bit for bit
    miss = rng.random((n, d)) < rate
    if draw(st.booleans()):
        miss[rng.integers(n)] = True  # a row with every value missing
    if draw(st.booleans()):
        miss[:, rng.integers(d)] = True  # a column with every value missing
    x[miss] = np.nan
    return x, miss


# ------------------------------------------------------------------ promise 1 and 2


@HYPOTHESIS
@given(
    case=damaged(),
    dtype=st.sampled_from(["float64", "float32", "float16"]),
    container=st.sampled_from(["numpy", "fortran", "strided", "tensor", "frame"]),
    strategy=st.sampled_from(["reverse", "direct"]),
    init=st.sampled_from(["median", "direct"]),
)
def test_observed_bit_identical_input_untouched_never_nan(case, dtype, container, strategy, init):
    x, miss = case
    imp = fitted(x.shape[1], strategy=strategy, init=init, dropout=0.2)
    x = x.astype(dtype)
    if container == "tensor":
        X = torch.from_numpy(x)
    elif container == "frame":
        X = pd.DataFrame(x, columns=[f"c{j}" for j in range(x.shape[1])], index=-np.arange(len(x)))
        imp = fitted(x.shape[1], strategy=strategy, init=init)  # fitted on an array
    elif container == "fortran":
        X = np.asfortranarray(x)
    elif container == "strided":
        wide = np.repeat(x, 2, axis=1)
        X = wide[:, ::2]
        assert not X.flags.c_contiguous
    else:
        X = x
    before = X.clone() if isinstance(X, torch.Tensor) else X.copy()
    with warnings.catch_warnings():
        # fallback warnings are allowed; a DataFrame on an array-fitted imputer warns too
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", "X has feature names", UserWarning)
        out = imp.transform(X)
    assert_promise(X, before, out, miss)
    if container in ("numpy", "fortran", "strided", "tensor"):
        assert out.dtype == X.dtype  # float dtypes are preserved


@HYPOTHESIS
@given(case=damaged(), kind=st.sampled_from(["int64", "int32", "bool"]))
def test_int_and_bool_input_comes_back_float64_with_exact_observed_values(case, kind):
    x, miss = case
    imp = fitted(x.shape[1], missing_values=-1)
    X = np.where(miss, -1, np.abs(np.round(x))).astype(kind if kind != "bool" else "int64")
    if kind == "bool":  # a placeholder cannot live in a bool array: nothing is missing
        X, miss = X > 1, np.zeros_like(miss)
    before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = imp.transform(X)
    assert out.dtype == np.float64
    assert_promise(X, before, out, miss)


def test_fit_transform_with_all_missing_rows_and_columns_is_finite():
    x = data(n=12, d=3)
    x[0] = np.nan
    x[:, 2] = np.nan
    before = x.copy()
    with pytest.warns(RuntimeWarning, match="no observed value"):
        out = ReverseImputer(**TINY).fit_transform(x)
    assert_promise(x, before, out, np.isnan(before))


def test_compile_path_keeps_the_promises():
    """The one compile-path test of the default run (tiny shape: it compiles once)."""
    x = data(n=6, d=3)
    x[0] = np.nan
    before = x.copy()
    imp = ReverseImputer(**{**TINY, "backend": "compile", "batch_size": 8}).fit(x)
    details = imp.transform_details(x)
    assert details.backend == "compile"
    assert_promise(x, before, details.X, np.isnan(before))
    ref = imp.set_params(backend="reference").transform(x)
    assert_close(torch.from_numpy(details.X), torch.from_numpy(ref), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(case=damaged(), dtype=st.sampled_from(["float64", "float32"]))
def test_compile_path_promises_property(case, dtype):
    x, miss = case
    x = x.astype(dtype)
    before = x.copy()
    imp = fitted(x.shape[1], backend="compile", batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = imp.transform(x)
    assert_promise(x, before, out, miss)


class _NaNDecoder(torch.nn.Module):
    """Emits NaN for rows whose first input is above the middle, else a plain copy."""

    def forward(self, h):
        return torch.where(h[:, :1] > 0.5, torch.full_like(h, float("nan")), h)


def _nan_ae(d):
    net = torch.nn.Module()
    net.encoder = torch.nn.Identity()
    net.decoder = _NaNDecoder()
    net.forward = lambda x: net.decoder(net.encoder(x))
    return net


@pytest.mark.parametrize("strategy", ["direct", "reverse-clean", "reverse-init-direct"])
def test_an_autoencoder_emitting_nan_never_leaks_nan(strategy):
    x = data(n=20, d=3)
    x[:, 1] = np.where(np.arange(20) % 3 == 0, np.nan, x[:, 1])
    params = {**TINY, "sphere_weight": 0.0, "scaling": "minmax"}
    if strategy == "direct":
        params["strategy"] = "direct"
    elif strategy == "reverse-init-direct":
        params["init"] = "direct"
    imp = ReverseImputer(autoencoder=_nan_ae(3), **params).fit(x)
    with pytest.warns(RuntimeWarning, match=r"not finite|diverged") as record:
        out = imp.transform(x)
    assert any(any(ch.isdigit() for ch in str(w.message)) for w in record)  # a count
    assert_promise(x, x.copy(), out, np.isnan(x))


def test_training_that_diverges_raises_a_clear_error():
    x = data() * 1e20
    with pytest.raises(TrainingDivergedError, match=r"diverged.*epoch 1.*learning rate"):
        ReverseImputer(**{**TINY, "scaling": "none"}).fit(x)
    assert issubclass(TrainingDivergedError, FloatingPointError)


# ------------------------------------------------------------------ promise 3: bad input


def _mixed_strings():
    a = data().astype(object)
    a[0, 1] = "abc"
    return a


def _big(v, v2=None):
    a = data()
    a[1, 0] = v
    if v2 is not None:
        a[2, 0] = v2
    return a


# (case, what fit gets, exception, message): every error names the problem.
FIT_ERRORS = [
    ("empty input", lambda: np.empty((0, 4)), ValueError, "no rows"),
    ("no columns", lambda: np.empty((5, 0)), ValueError, "0 feature"),
    ("1-D input", lambda: data()[0], ValueError, "2-D"),
    ("3-D tensor", lambda: torch.zeros(2, 3, 4), ValueError, "2-D"),
    ("inf values", lambda: _big(np.inf), ValueError, "infinite values .*row 1, column 0"),
    ("-inf in a tensor", lambda: torch.from_numpy(_big(-np.inf)), ValueError, "infinite"),
    ("string in a numeric array", _mixed_strings, TypeError, "must be numeric.*'abc'"),
    ("unicode array", lambda: np.array([["1", "x"], ["2", "y"]]), TypeError, "numeric"),
    ("complex", lambda: data().astype(complex), ValueError, "Complex"),
    (
        "sparse",
        lambda: __import__("scipy.sparse").sparse.csr_matrix(np.eye(3)),
        TypeError,
        "sparse",
    ),
    ("every entry missing", lambda: np.full((4, 3), np.nan), ValueError, "every entry is missing"),
    ("meta tensor", lambda: torch.empty(3, 3, device="meta"), ValueError, "meta"),
    ("1e39 with scaling='none'", lambda: _big(1e39), ValueError, "too large.*float32"),
    ("range beyond float64", lambda: _big(1.7e308, -1.7e308), ValueError, "feature 0 spans"),
]


@pytest.mark.parametrize(
    ("case", "make", "exc", "match"), FIT_ERRORS, ids=[c[0] for c in FIT_ERRORS]
)
def test_bad_input_at_fit(case, make, exc, match):
    params = {**TINY, "scaling": "none"} if "scaling='none'" in case else TINY
    with pytest.raises(exc, match=match):
        ReverseImputer(**params).fit(make())


def test_bad_input_at_transform():
    imp = fitted(4)
    with pytest.raises(NotFittedError, match="not fitted"):
        ReverseImputer(**TINY).transform(data())
    with pytest.raises(ValueError, match="X has 3 features, but ReverseImputer is expecting 4"):
        imp.transform(data(d=3))
    with pytest.raises(ValueError, match="X has 3 features"):
        imp.transform(torch.from_numpy(data(d=3)))
    with pytest.raises(ValueError, match="no rows"):
        imp.transform(data()[:0])
    with pytest.raises(ValueError, match="infinite"):
        imp.transform(_big(np.inf))
    with pytest.raises(ValueError, match=r"too large to impute in float32.*row 1, column 0"):
        imp.transform(_big(1e300))  # fits float64, not float32 after scaling
    frame_imp = ReverseImputer(**TINY).fit(pd.DataFrame(data(), columns=list("abcd")))
    with pytest.raises(ValueError, match="feature names"):
        frame_imp.transform(pd.DataFrame(data(), columns=list("abcz")))


def test_documented_behaviours():
    # one row: fine at transform; at fit, columns it leaves unobserved warn
    imp = fitted(4)
    row = data()[:1]
    assert np.isfinite(imp.transform(row)).all()
    with pytest.warns(RuntimeWarning, match="no observed value"):
        ReverseImputer(**TINY).fit(row)
    # one column: the column mean, with a warning
    col = data()[:, :1]
    with pytest.warns(UserWarning, match="1 feature"):
        out = ReverseImputer(**TINY).fit_transform(col)
    assert np.allclose(out[np.isnan(col)], np.nanmean(col), rtol=1e-6)
    # every entry of X missing at transform: typical rows, finite
    assert np.isfinite(imp.transform(np.full((3, 4), np.nan))).all()
    # 1e30 (fits float32) and 1e39 (only float64) are scaled in float64 first
    for v in (1e30, 1e39):
        x = _big(v)
        out = ReverseImputer(**TINY).fit_transform(x)
        assert out[1, 0] == v and np.isfinite(out).all()
    # float16 comes back float16; imputed values never overflow it
    x16 = (data() * 5e3).astype(np.float16)
    out16 = ReverseImputer(**{**TINY, "clamp": False}).fit_transform(x16)
    assert out16.dtype == np.float16 and np.isfinite(out16).all()
    # torch: int/bool tensors come back float32, bfloat16 stays bfloat16
    t = torch.from_numpy(np.nan_to_num(data(), nan=1.0)).round().int()
    assert fitted(4).transform(t).dtype == torch.float32
    tb = torch.from_numpy(data()).bfloat16()
    assert fitted(4).transform(tb).dtype == torch.bfloat16
    # Fortran-ordered and strided arrays: the same bits as a C-ordered copy
    x = data()
    want = imp.transform(x)
    assert np.array_equal(imp.transform(np.asfortranarray(x)), want)
    assert np.array_equal(imp.transform(np.repeat(x, 2, axis=1)[:, ::2]), want)
    # object arrays of numbers, None for missing: float64 out
    obj = np.where(np.isnan(x), None, x).astype(object)
    assert np.array_equal(imp.transform(obj), want)


def test_triton_without_a_kernel_device_says_what_to_do():
    from revml.backends import triton_available

    if triton_available(torch.device("cpu")):
        pytest.skip("TRITON_INTERPRET=1 is set: the Triton path runs here")
    imp = ReverseImputer(**{**TINY, "backend": "triton"}).fit(data())
    with pytest.raises(RuntimeError, match="needs a CUDA device or TRITON_INTERPRET=1"):
        imp.transform(data())


def test_triton_path_rejects_a_module_it_cannot_fuse():
    x = data()
    net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.GELU(), torch.nn.Linear(2, 4))
    imp = ReverseImputer(autoencoder=net, **{**TINY, "sphere_weight": 0.0, "backend": "triton"})
    with pytest.raises(ValueError, match="backend='triton' needs an MLP autoencoder"):
        imp.fit(x).transform(x)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        ReverseImputer(**{**TINY, "activation": "gelu"}).fit(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_tensor_on_a_cpu_imputer_and_back():
    x = data()
    cpu_imp = fitted(4)
    t = torch.from_numpy(x).cuda()
    out = cpu_imp.transform(t)
    assert out.device == t.device
    assert_promise(t, t.clone(), out, np.isnan(x))
    gpu_imp = ReverseImputer(**{**TINY, "device": "cuda"}).fit(x)
    tc = torch.from_numpy(x)
    out = gpu_imp.transform(tc)
    assert out.device.type == "cpu"
    assert_promise(tc, tc.clone(), out, np.isnan(x))


# ------------------------------------------------------------------ promise 4: determinism


def test_same_seed_bit_identical_and_batch_size_only_rounding(tmp_path):
    x = data(n=40)
    a = ReverseImputer(**{**TINY, "dropout": 0.2}).fit(x)
    b = ReverseImputer(**{**TINY, "dropout": 0.2}).fit(x)
    assert np.array_equal(bits(a.transform(x)), bits(b.transform(x)))
    full = a.set_params(batch_size=256).transform(x)
    for bs in (1, 7):
        got = a.set_params(batch_size=bs).transform(x)
        assert_close(torch.from_numpy(got), torch.from_numpy(full), rtol=1e-4, atol=1e-5)
    a.set_params(batch_size=None)
    loaded = ReverseImputer.load(a.save(tmp_path / "m"))
    for strategy in ("reverse", "direct"):
        a.set_params(strategy=strategy)
        loaded.set_params(strategy=strategy)
        assert np.array_equal(bits(loaded.transform(x)), bits(a.transform(x)))
        t = torch.from_numpy(x).float()
        assert torch.equal(loaded.transform(t), a.transform(t))


# ------------------------------------------------------------------ promise 6: model files


def _reseal(folder, config=None):
    """Rewrite config.json with fresh checksums, as an attacker could."""
    blob = (folder / MODEL_FILE).read_bytes()
    config = config or json.loads((folder / CONFIG_FILE).read_text())
    config.pop("config_sha256", None)
    config["files"][MODEL_FILE] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    config["config_sha256"] = hashlib.sha256(_canonical(config)).hexdigest()
    (folder / CONFIG_FILE).write_text(json.dumps(config))


class _Payload:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['REVML_PWNED'], 'w').close()",))


def test_model_files_are_data_not_code(tmp_path, monkeypatch):
    x = data()
    imp = ReverseImputer(**TINY).fit(x)
    folder = imp.save(tmp_path / "m")
    # loading never unpickles
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("pickle used"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load used"))
    assert np.array_equal(ReverseImputer.load(folder).transform(x), imp.transform(x))
    monkeypatch.undo()

    # a pickle bomb in place of the weights, checksums forged: refused, never run
    marker = tmp_path / "pwned"
    monkeypatch.setenv("REVML_PWNED", str(marker))
    (folder / MODEL_FILE).write_bytes(pickle.dumps(_Payload()))
    _reseal(folder)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        ReverseImputer.load(folder)
    assert not marker.exists()


def test_model_file_from_a_different_feature_set(tmp_path):
    a = ReverseImputer(**TINY).fit(data(d=4)).save(tmp_path / "a")
    b = ReverseImputer(**TINY).fit(data(d=5)).save(tmp_path / "b")
    (a / MODEL_FILE).write_bytes((b / MODEL_FILE).read_bytes())
    with pytest.raises(ValueError, match="does not match the checksum"):
        ReverseImputer.load(a)
    _reseal(a)  # even with forged checksums the weights do not fit
    with pytest.raises(ValueError, match="weights do not fit the saved architecture"):
        ReverseImputer.load(a)
    loaded = ReverseImputer.load(b)
    with pytest.raises(ValueError, match="X has 4 features, but ReverseImputer is expecting 5"):
        loaded.transform(data(d=4))


def test_garbled_config_entries_are_clear_errors(tmp_path):
    folder = ReverseImputer(**TINY).fit(data()).save(tmp_path / "m")
    good = json.loads((folder / CONFIG_FILE).read_text())
    for edit, match in [
        (lambda c: c["architecture"].update(activation="os.system"), "architecture is not"),
        (lambda c: c["architecture"].update(evil=1), "architecture is not"),
        (lambda c: c["fitted"]["medians_"].update(dtype="object"), "not a float"),
        (lambda c: c["params"].update(__class__="x"), "garbles"),
        (lambda c: c["fitted"].pop("radius_"), "garbles"),
    ]:
        config = json.loads(json.dumps(good))
        edit(config)
        _reseal(folder, config)
        with pytest.raises(ValueError, match=match):
            ReverseImputer.load(folder)
