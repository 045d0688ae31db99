"""The promises of README "Promises" on the Triton path (``backend="triton"``).

Run on the CPU with ``TRITON_INTERPRET=1 python -m pytest -m kernels`` (the variable must
be set before Triton is imported), or unchanged on a CUDA GPU. Shapes are tiny: the
interpreter runs every kernel program in Python.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("triton", reason="the Triton kernels need the triton package")

from asserts import assert_close
from kernel_utils import DEVICE, requires_kernel_device

from revml import ReverseImputer

pytestmark = [pytest.mark.kernels, requires_kernel_device]

TINY = {
    "hidden": (5,),
    "bottleneck": 2,
    "epochs": 2,
    "n_steps": 3,
    "random_state": 0,
    "dropout": 0.2,
    "device": str(DEVICE),
}
# One batch shape for every example, so a GPU compiles the kernels once.
BATCH = 8


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 2.0


_IMPUTERS: dict = {}


def _imputer(d: int, activation: str) -> ReverseImputer:
    key = (d, activation)
    if key not in _IMPUTERS:
        x = _data(30, d, 0)
        x[::4, 0] = np.nan
        params = {**TINY, "activation": activation, "backend": "triton", "batch_size": BATCH}
        _IMPUTERS[key] = ReverseImputer(**params).fit(x)
    return _IMPUTERS[key]


@settings(max_examples=6, deadline=None)
@given(
    n=st.integers(1, 11),
    d=st.sampled_from([3, 5]),
    seed=st.integers(0, 2**16),
    rate=st.sampled_from([0.2, 0.6, 1.0]),
    whole_row=st.booleans(),
    container=st.sampled_from(["numpy", "fortran", "tensor"]),
    activation=st.sampled_from(["relu", "tanh"]),
)
def test_triton_observed_bit_identical_input_untouched_never_nan(
    n, d, seed, rate, whole_row, container, activation
):
    rng = np.random.default_rng(seed)
    x = _data(n, d, seed)
    miss = rng.random((n, d)) < rate
    if whole_row:
        miss[rng.integers(n)] = True
    x[miss] = np.nan
    X = {"numpy": x, "fortran": np.asfortranarray(x), "tensor": torch.from_numpy(x)}[container]
    before = X.clone() if isinstance(X, torch.Tensor) else X.copy()
    imp = _imputer(d, activation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        details = imp.transform_details(X)
    out = details.X
    if miss.any():
        assert details.backend == "triton"
    if isinstance(X, torch.Tensor):
        assert torch.equal(X.nan_to_num(7.0), before.nan_to_num(7.0))
        out = out.cpu().numpy()
    else:
        assert np.array_equal(X.view(np.uint64), before.view(np.uint64))
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert np.array_equal(out[~miss].view(np.uint64), x[~miss].view(np.uint64))


def test_triton_matches_the_reference_path_and_is_deterministic():
    x = _data(13, 5, 1)
    x[np.random.default_rng(1).random(x.shape) < 0.3] = np.nan
    imp = _imputer(5, "relu")
    a = imp.transform(x)
    assert np.array_equal(a, imp.transform(x))  # same seed, same bits
    ref = imp.set_params(backend="reference").transform(x)
    imp.set_params(backend="triton")
    assert_close(torch.from_numpy(a), torch.from_numpy(ref), rtol=1e-4, atol=1e-5, name="triton")
