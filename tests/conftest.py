"""Shared fixtures: a fixed seed for every test and the local MNIST copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 - code under test may draw from the legacy global state


@pytest.fixture
def mnist_dir() -> Path:
    from revml.datasets import find_mnist_dir

    found = find_mnist_dir([MNIST_DIR])
    if found is None:
        pytest.skip(f"no local MNIST copy at {MNIST_DIR} (tests never download)")
    return found
