"""Fingerprint revml's outputs, to prove a refactor changed none of them bit for bit.

Every case below runs a fixed, seeded imputation and records the SHA-256 of its output's
exact bytes (numpy: the C-contiguous bytes plus dtype and shape; DataFrame: its index,
and per column its name, dtype string and values -- numeric bytes, the missing mask of
nullable columns, the codes and categories of categoricals, ``repr`` of object values).
Run it once on the commit before the refactor (``--out``) and once after (``--check``):
any differing case means some output changed.

    # before: record
    python benchmarks/check_identical.py --out benchmarks/results/identity_before.json
    # after: recompute and compare; prints case / before / after / same, exits 1 on a change
    python benchmarks/check_identical.py --check benchmarks/results/identity_before.json

``--only PATTERN`` (fnmatch on the group names, repeatable) runs and checks a subset of
the groups, e.g. ``--only 'wine/*' --only mixed_frame``; ``--list`` prints the groups.

The cases (110 in 8 groups; about 2 minutes on one CPU thread, nearly all of it the
autoencoders' training):

* scikit-learn's breast cancer, wine and diabetes tables (``TABLES`` of
  ``benchmarks/comparison_table.py``: raw values in a DataFrame, as ``compare`` gets them;
  its scoring, not its input, is min-max scaled), with 20% and 50% of the cells hidden
  exactly as :func:`revml.evaluate.compare` hides them (``make_mask`` with
  ``mechanism="mcar"``, ``seed=0``, then ``hide``); the damaged table is a case too. On
  each, 15 cases: ``ReverseImputer(random_state=0, backend="reference", device="cpu")``,
  every other parameter at its default, fitted once (its weights are fingerprinted:
  names, dtypes, values); its ``transform`` (reverse strategy); the same fitted imputer
  with ``set_params(strategy="direct")``; ``transform(X, return_std=True)`` (both returned
  frames); ``multiple_imputations(X, n_imputations=2)`` (each copy); and every classical
  method of :data:`revml.baselines.METHODS`, built by
  :func:`revml.baselines.make_imputer` with ``random_state=0`` as ``compare`` builds them,
  then ``fit`` and ``transform``. The two autoencoder entries of ``METHODS``
  (``direct_ae``, ``reverse``) are the ReverseImputer cases, with the backend pinned to
  ``"reference"``. Nothing is dropped: both fractions run on every table.
* ``mixed_frame``, 17 cases: a 200-row DataFrame drawn from
  ``numpy.random.default_rng(20240601)`` with float, ``Int64``, categorical (strings),
  string and nullable boolean columns, 15% of cells missing (the input is a case);
  ``ReverseImputer(random_state=0, backend="reference", device="cpu", epochs=30)``:
  ``fit_transform``, then the same 7 outputs as on the tables, the ``transform`` of a
  ``save()``/``load()`` round trip through a temporary folder, and the classical methods.
* ``digits_8x8/mcar20``, 3 cases: the first 300 scikit-learn digits (8x8 = 64 features
  divided by 16, so in [0, 1]), 20% MCAR (``revml.masks.mcar``, seed 0), through
  ``ReverseImputer(random_state=0, backend="reference", device="cpu", image_shape=(8, 8),
  epochs=5)``: ``fit_transform`` (reverse), the weights, and the direct strategy.

The fingerprints are for the CPU reference path with one thread: the script hides CUDA
and sets ``torch.set_num_threads(1)`` and the OpenMP/BLAS thread counts to 1 before
anything runs, since float results (BLAS reductions) can depend on the thread count and
device. They also depend on the torch, numpy, scikit-learn and pandas versions; the JSON
records them with the git revision, and ``--check`` warns when they differ from the
recorded ones (a difference there, not the refactor, may explain a changed case).
"""

# ruff: noqa: E402 - the thread and device settings must precede the numpy/torch imports
from __future__ import annotations

import os

# Before numpy/torch load: one thread everywhere, no GPU (the fingerprints are for the CPU
# reference path with one thread).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import argparse
import fnmatch
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set, or parallel work already started
    pass

import revml
from revml import ReverseImputer, masks
from revml.baselines import METHODS, make_imputer
from revml.evaluate import hide, make_mask

# The tables and fractions of benchmarks/comparison_table.py (its TABLES, and
# compare(frame, ..., fraction=f, seed=0) with the default MCAR mechanism).
TABLES = {"breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}
FRACTIONS = (0.2, 0.5)
SEED = 0
AE_METHODS = ("direct_ae", "reverse")  # covered by the ReverseImputer cases
BASELINES = tuple(m for m in METHODS if m not in AE_METHODS)
CPU = {"random_state": SEED, "backend": "reference", "device": "cpu"}


# ---------------------------------------------------------------------- fingerprints
def _update_array(h: Any, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"ndarray|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())


def _update_text(h: Any, values: Any) -> None:
    """Object values by ``repr`` (exact for floats and strings, tells None/nan/NA apart)."""
    text = "\x1f".join(repr(v) for v in values)
    h.update(f"text|{len(values)}|".encode())
    h.update(text.encode("utf-8", "surrogatepass"))


def _update_series(h: Any, s: pd.Series) -> None:
    h.update(f"column|{s.name!r}|{s.dtype}|{len(s)}|".encode())
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        h.update(f"ordered={dtype.ordered}|".encode())
        _update_series(h, pd.Series(dtype.categories, name="categories"))
        _update_array(h, s.cat.codes.to_numpy())
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        _update_array(h, s.to_numpy())
    elif isinstance(dtype, np.dtype):  # object
        _update_text(h, s.tolist())
    else:  # pandas extension dtypes: Int64, boolean, Float64, str, ...
        na = s.isna().to_numpy()
        _update_array(h, na)
        numpy_type = getattr(dtype, "numpy_dtype", None)
        if numpy_type is not None and numpy_type.kind in "biuf":
            _update_array(h, s.to_numpy(dtype=numpy_type, na_value=numpy_type.type(0)))
        else:
            _update_text(h, [v for v, m in zip(s.tolist(), na, strict=True) if not m])


def _update(h: Any, obj: Any) -> None:
    if isinstance(obj, pd.DataFrame):
        h.update(f"DataFrame|{obj.shape}|".encode())
        _update_series(h, pd.Series(obj.index, name="index"))
        for j in range(obj.shape[1]):
            _update_series(h, obj.iloc[:, j])
    elif isinstance(obj, pd.Series):
        _update_series(h, obj)
    elif isinstance(obj, torch.Tensor):
        _update_array(h, obj.detach().cpu().numpy())
    elif isinstance(obj, np.ndarray):
        _update_array(h, obj)
    else:
        raise TypeError(f"no fingerprint for {type(obj).__name__}")


def fingerprint(obj: Any) -> str:
    """SHA-256 of an array's or DataFrame's exact contents (see the module docstring)."""
    h = hashlib.sha256()
    _update(h, obj)
    return h.hexdigest()


def weights_fingerprint(imp: ReverseImputer) -> str:
    """SHA-256 of the fitted autoencoder's state dict: names, dtypes, shapes, values."""
    h = hashlib.sha256()
    for name, tensor in imp.autoencoder_.state_dict().items():
        h.update(f"{name}|".encode())
        _update_array(h, tensor.detach().cpu().numpy())
    return h.hexdigest()


# ---------------------------------------------------------------------- the cases
def table_cases() -> Iterator[tuple[str, Callable[[], dict[str, Any]]]]:
    """One group per (table, fraction): every output of that damaged table."""
    for name, loader in TABLES.items():
        frame = pd.DataFrame(loader().data)
        for fraction in FRACTIONS:
            prefix = f"{name}/mcar{round(fraction * 100)}"

            def run(frame=frame, fraction=fraction) -> dict[str, Any]:
                damaged = hide(frame, make_mask(frame, fraction, "mcar", SEED))
                out = {"input": damaged} | imputer_outputs(ReverseImputer(**CPU), damaged)
                return out | baseline_outputs(damaged)

            yield prefix, run


def imputer_outputs(imp: ReverseImputer, X: Any, *, save_load: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"reverse": imp.fit(X).transform(X)}
    out["weights"] = weights_fingerprint(imp)
    out["direct"] = imp.set_params(strategy="direct").transform(X)
    imp.set_params(strategy="reverse")
    out["return_std.X"], out["return_std.std"] = imp.transform(X, return_std=True)
    for r, copy in enumerate(imp.multiple_imputations(X, n_imputations=2)):
        out[f"multiple_imputations[{r}]"] = copy
    if save_load:
        with tempfile.TemporaryDirectory() as tmp:
            folder = imp.save(Path(tmp) / "model")
            out["save_load.reverse"] = ReverseImputer.load(folder).transform(X)
    return out


def baseline_outputs(X: Any) -> dict[str, Any]:
    """Each classical method as :func:`revml.evaluate.compare` runs it: fit, transform."""
    return {
        f"baseline.{m}": clone(make_imputer(m, random_state=SEED)).fit(X).transform(X)
        for m in BASELINES
    }


def mixed_frame(n: int = 200, missing: float = 0.15) -> pd.DataFrame:
    """A seeded mixed-type table: float, Int64, categorical, string and boolean columns."""
    rng = np.random.default_rng(20240601)
    z = rng.normal(size=(n, 3))
    frame = pd.DataFrame(
        {
            "x": z[:, 0],
            "y": 2.0 * z[:, 0] - z[:, 1] + 0.1 * rng.normal(size=n),
            "count": pd.array(np.clip(np.round(3 + z[:, 1] + z[:, 2]), 0, None), dtype="Int64"),
            "colour": pd.Categorical(
                np.where(z[:, 2] > 0.5, "red", np.where(z[:, 2] < -0.5, "blue", "green"))
            ),
            "grade": np.where(z[:, 0] + z[:, 2] > 0, "high", "low").astype(object),
            "flag": pd.array(z[:, 1] > 0, dtype="boolean"),
        }
    )
    return hide(frame, rng.random(frame.shape) < missing)


def mixed_case() -> dict[str, Any]:
    frame = mixed_frame()
    imp = ReverseImputer(**CPU, epochs=30)
    out = {"input": frame, "fit_transform": imp.fit_transform(frame)}
    out |= imputer_outputs(imp, frame, save_load=True)
    return out | baseline_outputs(frame)


def image_case() -> dict[str, Any]:
    x = load_digits().data[:300] / 16.0
    damaged = masks.apply(x, masks.mcar(x.shape, 0.2, seed=SEED))
    imp = ReverseImputer(**CPU, image_shape=(8, 8), epochs=5)
    out = {"fit_transform": imp.fit_transform(damaged), "weights": weights_fingerprint(imp)}
    out["direct"] = imp.set_params(strategy="direct").transform(damaged)
    return out


def groups() -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    return [*table_cases(), ("mixed_frame", mixed_case), ("digits_8x8/mcar20", image_case)]


def selected(prefix: str, only: list[str] | None) -> bool:
    """Whether ``--only`` selects the group ``prefix``."""
    return not only or any(fnmatch.fnmatch(prefix, p) for p in only)


def compute(only: list[str] | None, log: Callable[[str], None]) -> tuple[dict, dict]:
    """Run the selected groups; return ``{case: sha256}`` and ``{group: seconds}``."""
    hashes: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for prefix, run in groups():
        if not selected(prefix, only):
            continue
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and empty-column warnings
            outputs = run()
        for key, value in outputs.items():
            hashes[f"{prefix}/{key}"] = value if isinstance(value, str) else fingerprint(value)
        seconds[prefix] = round(time.perf_counter() - t, 1)
        log(f"{prefix:<22} {len(outputs):>3} cases  {seconds[prefix]:6.1f} s")
    return hashes, seconds


# ---------------------------------------------------------------------- environment
def git(*args: str) -> str | None:
    root = Path(revml.__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def environment() -> dict[str, Any]:
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_revision": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "revml_file": str(Path(revml.__file__).resolve()),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda_visible": torch.cuda.is_available(),
    }


VERSION_KEYS = ("torch", "numpy", "pandas", "sklearn", "python", "machine", "torch_threads")


# ---------------------------------------------------------------------- CLI
def check(before: dict, hashes: dict[str, str], only: list[str] | None) -> bool:
    """Print case / before / after / same; True when every case is the same."""
    old = before["fingerprints"]
    names = list(dict.fromkeys([*old, *hashes]))
    names = [n for n in names if selected(n.rsplit("/", 1)[0], only)]
    width = max(len(n) for n in names)
    print(f"\n{'case':<{width}}  {'before':<12}  {'after':<12}  same")
    n_diff = 0
    for name in names:
        a, b = old.get(name), hashes.get(name)
        same = a is not None and a == b
        n_diff += not same
        print(
            f"{name:<{width}}  {(a or '(missing)')[:12]:<12}  {(b or '(missing)')[:12]:<12}  "
            f"{'yes' if same else 'NO'}"
        )
    env, now = before.get("environment", {}), environment()
    for key in VERSION_KEYS:
        if env.get(key) != now.get(key):
            print(f"warning: {key} was {env.get(key)!r} before, is {now.get(key)!r} now")
    print(
        f"\n{len(names) - n_diff} of {len(names)} cases identical "
        f"(before: {env.get('git_revision')}, now: {now['git_revision']}"
        f"{' + uncommitted changes' if now['git_dirty'] else ''})"
    )
    return n_diff == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the fingerprints to this JSON file")
    ap.add_argument("--check", help="compare against fingerprints written by --out")
    ap.add_argument("--only", action="append", help="fnmatch pattern of cases (repeatable)")
    ap.add_argument("--list", action="store_true", help="print the case groups and exit")
    args = ap.parse_args()
    if args.list:
        for prefix, _ in groups():
            print(prefix)
        return
    if not (args.out or args.check):
        ap.error("give --out FILE, --check FILE or both")
    before = json.loads(Path(args.check).read_text()) if args.check else None

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(
        f"revml from {Path(revml.__file__).resolve().parent}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    t0 = time.perf_counter()
    hashes, seconds = compute(args.only, log)
    total = time.perf_counter() - t0
    log(f"{len(hashes)} cases in {total:.0f} s")
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "benchmark": "check_identical",
            "environment": environment(),
            "n_cases": len(hashes),
            "fingerprints": hashes,
            "seconds": seconds,
            "total_seconds": round(total, 1),
        }
        path.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {path}")
    if before is not None and not check(before, hashes, args.only):
        sys.exit(1)


if __name__ == "__main__":
    main()
