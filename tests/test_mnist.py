"""End to end on a few hundred real MNIST digits from ../shared/data (no network)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from revml import ReverseImputer, masks
from revml.cli import main
from revml.datasets import find_mnist_dir, load_mnist
from revml.metrics import binary_accuracy, image_scores


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("revml-cache")


@pytest.fixture
def digits(mnist_dir, cache):
    train, _ = load_mnist(mnist_dir, train=True, root=cache)
    test, labels = load_mnist(mnist_dir, train=False, root=cache)
    return train[:3000], test[:200], labels[:200]


def test_loader_reads_the_original_files(digits):
    train, test, labels = digits
    assert train.shape == (3000, 784) and test.shape == (200, 784)
    assert train.dtype == np.float32 and 0.0 <= train.min() and train.max() <= 1.0
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the canonical first test labels


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        load_mnist(tmp_path, root=tmp_path)
    assert find_mnist_dir([tmp_path]) is None


def test_reverse_training_beats_zero_fill_and_direct(digits):
    train, test, _ = digits
    miss = masks.row_band(len(test), seed=0)
    damaged = masks.apply(test, miss)
    imp = ReverseImputer(random_state=0, epochs=8, n_steps=150, backend="reference").fit(train)
    rev = imp.transform(damaged)
    direct = imp.set_params(strategy="direct").transform(damaged)
    zero = masks.apply(test, miss, 0.0)
    acc = {
        name: binary_accuracy(p, test, miss)
        for name, p in (("reverse", rev), ("direct", direct), ("zero", zero))
    }
    assert acc["reverse"] > acc["zero"] + 0.01, acc
    assert acc["reverse"] > acc["direct"], acc
    assert np.array_equal(rev[~miss], test[~miss])
    scores = image_scores(rev, test, miss)
    assert scores["image_accuracy"] > scores["missing_accuracy"]


def test_cli_mnist_writes_table_and_figure(mnist_dir, cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REVML_CACHE", str(cache))
    out = tmp_path / "run"
    code = main(
        [
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(out),
            "--n-train",
            "600",
            "--n-test",
            "40",
            "--epochs",
            "3",
            "--quiet",
            "--backend",
            "reference",
        ]
    )
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    methods = {(r["protocol"], r["method"]) for r in result["rows"]}
    assert ("seed", "reverse + clean pass") in methods
    assert ("revml defaults", "reverse training") in methods
    assert result["environment"]["torch"]
    assert (out / "figure.png").stat().st_size > 1000


def test_cli_reports_bad_data_dir(tmp_path, capsys):
    assert (
        main(["mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    )
    assert "no MNIST IDX files" in capsys.readouterr().err


def test_seed_protocol_pins_every_loop_parameter():
    """The seed's rows must not move when revml's defaults do: every parameter of the loop
    is fixed in SEED_REVERSE_PARAMS (with fill, which the experiment sets beside it)."""
    from revml.experiments.mnist import SEED_REVERSE_PARAMS

    loop = {
        "init",
        "dropout",
        "dropout_mode",
        "n_steps",
        "reverse_lr",
        "missing_weight",
        "sphere_weight",
        "clean_pass",
        "clean_samples",
        "n_restarts",
        "precision",
    }
    assert loop <= set(SEED_REVERSE_PARAMS)
    # revml's rule: the loop in bfloat16 only where it was measured to keep accuracy
    assert SEED_REVERSE_PARAMS["precision"] == "auto"
    assert SEED_REVERSE_PARAMS["sphere_weight"] > 0 and SEED_REVERSE_PARAMS["n_restarts"] == 1
