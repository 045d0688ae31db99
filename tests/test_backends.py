"""Execution paths: selection rules, and the compile path against the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from asserts import assert_close

from revml import MLPAutoencoder, ReverseImputer, backends, masks, reverse
from revml.backends import CPU_COMPILE_MIN_MACS, resolve_backend, row_macs

CPU = torch.device("cpu")


def test_auto_on_cpu_compiles_only_jobs_that_repay_it(monkeypatch):
    """The threshold counts multiply-adds: sample-steps times the network's weights, so a
    table's small network needs far more rows than an image's before it compiles."""
    ae = MLPAutoencoder(8, (6,), 2)
    macs = row_macs(ae)
    assert macs == 2 * (8 * 6 + 6 * 2)  # encoder and decoder weights, no biases
    steps = math.ceil(CPU_COMPILE_MIN_MACS / macs)  # the least work that reaches it
    assert resolve_backend("auto", ae, CPU) == "reference"
    assert resolve_backend("auto", ae, CPU, work=steps - 1) == "reference"
    monkeypatch.setattr(backends, "_cpu_compiler_available", lambda: True)
    assert resolve_backend("auto", ae, CPU, work=steps) == "compile"
    assert resolve_backend("auto", ae, CPU, work=steps - 1) == "reference"
    wide = MLPAutoencoder(784, (512, 128), 12)  # a network of 937k weights
    assert row_macs(wide) == 2 * (784 * 512 + 512 * 128 + 128 * 12)
    assert resolve_backend("auto", wide, CPU, work=250_000) == "compile"
    assert resolve_backend("auto", ae, CPU, work=250_000) == "reference"
    monkeypatch.setattr(backends, "_cpu_compiler_available", lambda: False)
    assert resolve_backend("auto", ae, CPU, work=steps) == "reference"


def test_auto_falls_back_to_the_reference_when_compiling_fails(monkeypatch):
    """A machine where torch.compile breaks still gets its imputation, with a warning."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    x_nan = masks.apply(x, masks.mcar(x.shape, 0.3, seed=0))
    imp = ReverseImputer(random_state=0, epochs=3, n_steps=10, backend="reference").fit(x_nan)
    expect = imp.transform(x_nan)

    class Broken:
        def __call__(self, *args, **kwargs):
            raise RuntimeError("InductorError: no working C++ compiler")

    real = backends.make_step_fn
    monkeypatch.setattr(backends, "CPU_COMPILE_MIN_MACS", 1)
    monkeypatch.setattr(backends, "_cpu_compiler_available", lambda: True)
    monkeypatch.setattr(
        reverse, "make_step_fn", lambda name, *a: Broken() if name == "compile" else real(name, *a)
    )
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        got = imp.set_params(backend="auto").transform_details(x_nan)
    assert got.backend == "reference"
    np.testing.assert_array_equal(got.X, expect)
    with pytest.raises(RuntimeError, match="no working C"):  # an explicit choice is honoured
        imp.set_params(backend="compile").transform(x_nan)


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("fast", MLPAutoencoder(8, (6,), 2), CPU)


def test_triton_refuses_modules_that_are_not_mlps():
    conv = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8)), torch.nn.Conv1d(1, 1, 3, padding=1), torch.nn.Flatten()
    )
    with pytest.raises(ValueError, match="MLP autoencoder"):
        resolve_backend("triton", conv, CPU)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_triton_without_gpu_or_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        resolve_backend("triton", MLPAutoencoder(8, (6,), 2), CPU)


def test_compile_matches_reference_through_the_imputer():
    """One torch.compile of the whole step (forward, input gradient, Adam, dropout hash).

    21 rows in batches of 8: the last batch is padded to the compiled shape. Tolerance:
    float32 rounding differs between Inductor's fused code and eager; Adam normalises each
    step, so a difference in a near-zero gradient can move an entry by up to lr, but over
    30 steps we measure ~1e-7; 1e-4 absolute leaves room for other CPUs' vector widths.
    """
    rng = np.random.default_rng(0)
    z = rng.normal(size=(21, 3))
    x = z @ rng.normal(size=(3, 12))
    miss = masks.mcar(x.shape, 0.3, seed=2)
    x_nan = masks.apply(x, miss)
    imp = ReverseImputer(
        random_state=0, epochs=10, n_steps=30, dropout=0.2, batch_size=8, backend="reference"
    ).fit(x_nan)
    assert imp.prior_ is not None  # the tables' default: the prior term is compiled too
    ref = imp.transform_details(x_nan)
    got = imp.set_params(backend="compile").transform_details(x_nan)
    assert got.backend == "compile"
    assert np.array_equal(got.X[~miss], x_nan[~miss])
    assert_close(
        torch.from_numpy(got.X),
        torch.from_numpy(ref.X),
        rtol=0,
        atol=1e-4,
        name="compile vs reference imputations",
    )
    assert_close(
        torch.from_numpy(got.loss),
        torch.from_numpy(ref.loss),
        rtol=1e-3,
        atol=1e-7,
        name="compile vs reference loss",
    )


@pytest.mark.parametrize("n_rows", [1, 5, 3_721, 3_722, 4_096, 10_000, 123_457])
def test_automatic_batches_are_equal_and_within_the_budget(n_rows):
    # The compiled paths pad the last batch to the full size: equal batches pad less than
    # one row per batch, never most of a batch.
    ae = MLPAutoencoder(784, hidden=(1024, 512), bottleneck=64)
    cpu = torch.device("cpu")
    largest = reverse.auto_batch_size(ae, 784, cpu)
    batch = reverse.auto_batch_size(ae, 784, cpu, n_rows)
    n_batches = math.ceil(n_rows / batch)
    assert batch <= min(largest, n_rows)
    assert n_batches == math.ceil(n_rows / largest)
    assert n_batches * batch - n_rows < n_batches
