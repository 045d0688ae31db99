"""Datasets: MNIST through torchvision (a local copy of the IDX files, or downloaded), and
a small synthetic table as people bring it (:func:`messy_table`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import MissingDependencyError, MissingFileError

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
        raise MissingDependencyError(
            "MNIST loading needs torchvision: pip install 'revml[mnist]'"
        ) from err
    root = Path(root) if root is not None else default_cache_dir()
    if data_dir is not None:
        src = find_mnist_dir([data_dir])
        if src is None:
            raise MissingFileError(
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


#: The four cities of :func:`messy_table`.
MESSY_CITIES = ("Oslo", "Lima", "Rome", "Kyoto")
#: How :func:`messy_table` writes "missing": an empty field, four of pandas' default NA
#: tokens and a lone blank.
MESSY_MISSING = ("", "N/A", "NULL", " ", "NaN", "None")
#: The placeholder :func:`messy_table` puts in some incomes: a number, which only the
#: detector (or the user) can judge to mean "missing".
MESSY_SENTINEL = "-999"


def messy_table(n: int = 300, seed: int = 0) -> str:
    """The CSV text of a small survey table, missing values written as people write them.

    Columns: ``age`` (integers), ``income`` (decimals), ``city`` (one of
    :data:`MESSY_CITIES`), ``score`` (decimals) and ``member`` (``yes``/``no``), related to
    one another so that there is something to learn. In every column about 8% of the cells
    hold one of :data:`MESSY_MISSING`, and about 4% of the incomes are -999
    (:data:`MESSY_SENTINEL`). The same ``n`` and ``seed`` give the same text.

    Parameters
    ----------
    n : int
        Rows, besides the header.
    seed : int
        Seed of the random generator (numpy's ``default_rng``).

    Returns
    -------
    str
        CSV text with a header line and ``\\n`` line ends.

    Examples
    --------
    >>> text = messy_table(5, seed=1)
    >>> text.splitlines()[0]
    'age,income,city,score,member'
    >>> len(text.splitlines()), text == messy_table(5, seed=1)
    (6, True)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    age = np.clip(np.rint(42 + 12 * z[:, 0]), 18, 90).astype(int)
    city = rng.integers(0, len(MESSY_CITIES), n)
    income = 18_000 + 700 * age + 4_000 * city + 6_000 * z[:, 1]
    score = 50 + 8 * z[:, 0] + 4 * city + 6 * z[:, 2]
    member = score + rng.normal(0, 4, n) > 55
    columns = {
        "age": [str(v) for v in age],
        "income": [f"{v:.2f}" for v in income],
        "city": [MESSY_CITIES[i] for i in city],
        "score": [f"{v:.1f}" for v in score],
        "member": ["yes" if m else "no" for m in member],
    }
    for cells in columns.values():
        for i in np.flatnonzero(rng.random(n) < 0.08):
            cells[i] = MESSY_MISSING[rng.integers(len(MESSY_MISSING))]
    incomes = columns["income"]
    for i in np.flatnonzero(rng.random(n) < 0.04):
        if incomes[i] not in MESSY_MISSING:
            incomes[i] = MESSY_SENTINEL
    rows = [",".join(columns)]
    rows += [",".join(cells[i] for cells in columns.values()) for i in range(n)]
    return "\n".join(rows) + "\n"
