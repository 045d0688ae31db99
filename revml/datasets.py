"""Datasets: MNIST through torchvision, from a local copy of the IDX files or downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def default_cache_dir() -> Path:
    """Where downloads and prepared copies go: ``$REVML_CACHE`` or ``~/.cache/revml``."""
    return Path(os.environ.get("REVML_CACHE", Path.home() / ".cache" / "revml"))


def find_mnist_dir(candidates: list[str | Path] | None = None) -> Path | None:
    """The first folder holding the four MNIST IDX .gz files, if any."""
    for cand in candidates or []:
        path = Path(cand)
        for folder in (path, path / "mnist", path / "MNIST" / "raw"):
            if all((folder / f).is_file() for f in MNIST_FILES):
                return folder
    return None


def load_mnist(
    data_dir: str | Path | None = None,
    *,
    train: bool = True,
    download: bool = True,
    root: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as float32 pixels in [0, 1], shape (N, 784), and uint8 labels.

    Parameters
    ----------
    data_dir : path, optional
        A folder with the four original IDX .gz files (e.g. ``../shared/data/mnist``).
        They are linked into torchvision's layout under ``root`` and verified by
        torchvision's md5 check, so no network is used.
    train : bool
        The 60,000 training digits, or the 10,000 test digits.
    download : bool
        Without ``data_dir``, let torchvision download the files into ``root``.
    root : path, optional
        torchvision's root folder; default :func:`default_cache_dir`.
    """
    try:
        from torchvision.datasets import MNIST
    except ImportError as err:  # pragma: no cover - torchvision is a declared dependency
        raise ImportError("MNIST loading needs torchvision: pip install 'revml[mnist]'") from err
    root = Path(root) if root is not None else default_cache_dir()
    if data_dir is not None:
        src = find_mnist_dir([data_dir])
        if src is None:
            raise FileNotFoundError(
                f"no MNIST IDX files in {data_dir}: expected {', '.join(MNIST_FILES)}"
            )
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for name in MNIST_FILES:
            target = raw / name
            if not target.exists():
                try:
                    target.symlink_to((src / name).resolve())
                except OSError:
                    import shutil

                    shutil.copyfile(src / name, target)
        # torchvision verifies the md5 of each .gz it finds and extracts it: no download.
        download = True
    ds = MNIST(str(root), train=train, download=download)
    images = ds.data.numpy().reshape(len(ds), -1).astype(np.float32) / 255.0
    return images, ds.targets.numpy().astype(np.uint8)
