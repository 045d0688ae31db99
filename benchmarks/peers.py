"""The imputers revml is measured against, each behind one small interface.

A peer has a ``name``, the ``params`` it runs with and the ``version`` of the package that
implements it (both go into the results JSON), and two entry points:

* ``fit_transform(X, seed)``: a float array with NaN for missing cells in, the filled
  array out (the observed cells unchanged);
* ``impute_frame(frame, seed)``: a DataFrame of ``float64`` and ``category`` columns
  (:meth:`suite.Table.load`) in, the filled frame out. Peers that handle only numbers
  one-hot encode the categories (:func:`suite.encode_onehot`) and call ``fit_transform``;
  miceforest and revml's own imputers take the frame as it is.

``unavailable()`` is ``None`` when the peer can run, else the reason it cannot (a missing
package or interpreter); the runner records the reason instead of a result. After a run,
``info`` holds what the peer reported about it (iterations run, convergence).

Peers (:func:`make_peers`):

``missforest``
    MissForest as scikit-learn writes it: ``IterativeImputer`` with
    ``ExtraTreesRegressor(n_estimators=100)``, scikit-learn's defaults otherwise (10 rounds,
    mean start, ascending order, tol 1e-3); categories one-hot, decoded by the largest
    filled indicator.
``miceforest``
    miceforest (LightGBM random forests in chained equations) with its defaults: predictive
    mean matching (``mean_match_strategy="normal"``, 5 candidates), 5 iterations.
``miceforest_nomm``
    The same without mean matching (``mean_match_candidates=0``): the forest's prediction
    itself, the most probable class for categories.
``hyperimpute``
    HyperImpute (Jarrett et al., ICML 2022), its default plugin, through a separate
    interpreter (it pulls TensorFlow, torch, XGBoost, CatBoost and Jupyter): one-hot arrays
    in and out as ``.npy``. Build that environment with :data:`HYPERIMPUTE_SETUP`.
``mean``, ``knn``, ``iterative``, ``gaussian``
    revml's classical baselines (:mod:`revml.baselines`) with their defaults.
``revml``
    ``revml.ReverseImputer(random_state=seed)``: reverse training, defaults.
``revml_direct``
    The same fitted autoencoder with ``strategy="direct"`` (one pass); with ``revml`` in
    the same run it reuses that fit, and its time includes the fit too.

Every peer is single-threaded (``n_jobs=1``, LightGBM ``num_threads=1``; torch threads are
the runner's ``--threads``), so times compare the methods, not how they parallelise. revml
runs with ``threads`` set to torch's thread count for the same reason: its default
(``"auto"``) also fits the blend's forests on every core. Threads never change revml's
results, only its time (the suite results up to git 0db3c72 had revml's forests on both
cores).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import decode_onehot, encode_onehot  # benchmarks/ is not a package

#: Interpreter of the separate HyperImpute environment (``REVML_HYPERIMPUTE_PYTHON``).
HYPERIMPUTE_PYTHON = os.environ.get("REVML_HYPERIMPUTE_PYTHON", "/tmp/hyperimpute-venv/bin/python")

#: miceforest's README: "no more than 5 iterations are usually necessary"; ``mice()`` has
#: no default of its own (its examples run 2), and R's mice also defaults to 5.
MICEFOREST_ITERATIONS = 5


def package_version(name: str) -> str | None:
    """Installed version of a distribution, ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class Peer:
    """Base class: a numeric ``fit_transform`` and a frame wrapper through one-hot codes."""

    name = "peer"
    #: Distribution whose version identifies the implementation.
    package = "revml"

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.info: dict[str, Any] = {}

    @property
    def version(self) -> str | None:
        """Version of :attr:`package`, the code that does the imputing."""
        return package_version(self.package)

    def unavailable(self) -> str | None:
        """``None`` if the peer can run here, else why it cannot."""
        if self.version is None:
            return f"not available: {self.package} is not installed (pip install -e .[bench])"
        return None

    def fit_transform(self, X: np.ndarray, seed: int) -> np.ndarray:
        """Fill the NaN entries of the float array ``X``; observed entries unchanged."""
        raise NotImplementedError

    def impute_frame(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        """Fill a frame of ``float64`` and ``category`` columns (one-hot for the numbers)."""
        Z, layout = encode_onehot(frame)
        return decode_onehot(self.fit_transform(Z, seed), layout, frame)

    def describe(self) -> dict[str, Any]:
        """``name``, ``params``, ``version`` and availability, for the results JSON."""
        return {
            "name": self.name,
            "params": self.params,
            "package": self.package,
            "version": self.version,
            "unavailable": self.unavailable(),
        }


class MissForest(Peer):
    """MissForest as scikit-learn's docs build it: ``IterativeImputer`` over extra trees.

    Parameters
    ----------
    n_estimators : int
        Trees per forest (100, the ``ExtraTreesRegressor`` default and MissForest's).
    """

    name = "missforest"
    package = "scikit-learn"

    def __init__(self, n_estimators: int = 100) -> None:
        super().__init__()
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401 - registers it
        from sklearn.impute import IterativeImputer

        defaults = IterativeImputer().get_params()
        self.params = {
            "estimator": "ExtraTreesRegressor",
            "n_estimators": n_estimators,
            "n_jobs": 1,
            "categories": "one-hot indicators regressed, decoded by argmax",
        } | {k: defaults[k] for k in ("max_iter", "tol", "initial_strategy", "imputation_order")}
        self.n_estimators = n_estimators

    def fit_transform(self, X: np.ndarray, seed: int) -> np.ndarray:
        from sklearn.ensemble import ExtraTreesRegressor
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        imp = IterativeImputer(
            estimator=ExtraTreesRegressor(
                n_estimators=self.n_estimators, n_jobs=1, random_state=seed
            ),
            random_state=seed,
            # Keep every column in place, so the output lines up with the one-hot layout
            # even when a column has no observed value left.
            keep_empty_features=True,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            out = imp.fit_transform(X)
        self.info = {
            "n_iter": int(imp.n_iter_),
            "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        }
        return out


class MiceForest(Peer):
    """miceforest's ``ImputationKernel``: LightGBM random forests in chained equations.

    Parameters
    ----------
    mean_matching : bool
        ``True``: miceforest's default, predictive mean matching (``"normal"``: each
        imputed value is drawn from the 5 observed values whose predictions are nearest).
        ``False``: ``mean_match_candidates=0``, which miceforest documents as skipping mean
        matching: the prediction itself for numbers, the most probable class otherwise.
    iterations : int
        Rounds of ``kernel.mice``.
    """

    package = "miceforest"

    def __init__(self, mean_matching: bool = True, iterations: int = MICEFOREST_ITERATIONS):
        super().__init__()
        self.mean_matching = mean_matching
        self.iterations = iterations
        self.name = "miceforest" if mean_matching else "miceforest_nomm"
        self.params = {
            "num_datasets": 1,
            "iterations": iterations,
            "mean_match_strategy": "normal",
            "mean_match_candidates": 5 if mean_matching else 0,
            "num_threads": 1,
            "lightgbm": package_version("lightgbm"),
            "categories": "pandas categoricals, native",
        }

    def unavailable(self) -> str | None:
        for dist in ("miceforest", "lightgbm"):
            if package_version(dist) is None:
                return f"not available: {dist} is not installed (pip install -e .[bench])"
        return None

    def impute_frame(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        import miceforest as mf

        # LightGBM refuses some characters in feature names; positional names avoid that.
        data = frame.copy()
        data.columns = [f"c{j}" for j in range(frame.shape[1])]
        for col in data.columns:
            if isinstance(data[col].dtype, pd.CategoricalDtype):
                # A category whose every cell is hidden has no training row: LightGBM's
                # multiclass objective needs each class label to occur.
                data[col] = data[col].cat.remove_unused_categories()
        kwargs: dict[str, Any] = {"num_datasets": 1, "random_state": seed}
        if not self.mean_matching:
            kwargs["mean_match_candidates"] = 0
        kernel = mf.ImputationKernel(data, **kwargs)
        kernel.mice(self.iterations, num_threads=1)
        done = kernel.complete_data(dataset=0)
        out = frame.copy()
        for j, col in enumerate(frame.columns):
            values = done.iloc[:, j].to_numpy()
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                # Back to the full category list (unused categories were dropped above).
                values = pd.Categorical(values.astype(object), dtype=frame[col].dtype)
            out[col] = pd.Series(values, index=out.index, dtype=frame[col].dtype)
        return out

    def fit_transform(self, X: np.ndarray, seed: int) -> np.ndarray:
        frame = pd.DataFrame(np.asarray(X, dtype=np.float64))
        return self.impute_frame(frame, seed).to_numpy(dtype=np.float64)


# Runs inside the HyperImpute interpreter: X.npy in, filled.npy and info.json out.
# HyperImpute sizes its pools from the machine (random forests and XGBoost take
# cpu_count() / 2 threads, CatBoost all cores, logistic regression n_jobs=-1), so the
# process is pinned to one core and told it has two: every learner then runs on one.
_HYPERIMPUTE_SCRIPT = r"""
import json, multiprocessing, os, sys, time
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
multiprocessing.cpu_count = lambda: 2
import numpy as np, pandas as pd
from hyperimpute.plugins.imputers import Imputers
src, dst, info, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
X = np.load(src)
plugin = Imputers().get("hyperimpute", random_state=seed)
t = time.perf_counter()
out = np.asarray(plugin.fit_transform(pd.DataFrame(X)), dtype=np.float64)
np.save(dst, out)
json.dump({"inner_seconds": time.perf_counter() - t}, open(info, "w"))
"""

# Versions of what HyperImpute runs on, printed as JSON by its interpreter.
_HYPERIMPUTE_PROBE = r"""
import importlib.metadata as m, json
import hyperimpute.plugins.imputers
names = ("hyperimpute", "pandas", "numpy", "scikit-learn", "torch", "xgboost", "catboost",
         "lightgbm", "tensorflow", "optuna")
print(json.dumps({n: m.version(n) for n in names}))
"""

#: How the separate environment was built (these pins made HyperImpute 0.1.17 run):
#: scikit-learn 1.8 removed ``LogisticRegression(multi_class=...)``, which its classifier
#: plugin passes; under pandas 3's copy-on-write its chained assignments
#: (``X[col][mask] = ...``) write nothing, so it silently returns its initial mean fill.
HYPERIMPUTE_SETUP = (
    "python3 -m venv /tmp/hyperimpute-venv && /tmp/hyperimpute-venv/bin/python -m pip install "
    "'torch==2.13.0+cpu' 'hyperimpute==0.1.17' 'scikit-learn==1.5.2' 'xgboost<2.1' 'pandas<3'"
)


class HyperImpute(Peer):
    """HyperImpute's default plugin, run by a separate interpreter (:data:`HYPERIMPUTE_PYTHON`).

    It needs TensorFlow, torch, XGBoost, CatBoost and Jupyter at versions of its own, so it
    must not share revml's environment; the arrays cross as ``.npy`` files. ``info``
    records the time inside the plugin (``inner_seconds``) apart from the interpreter's
    start-up and imports, which the runner's wall time includes.
    """

    name = "hyperimpute"
    package = "hyperimpute"

    def __init__(self, python: str = HYPERIMPUTE_PYTHON, timeout: float = 3600.0) -> None:
        super().__init__()
        self.python = python
        self.timeout = timeout
        self._probe: tuple[str | None, str | None] | None = None
        self.params = {
            "plugin": "hyperimpute (defaults)",
            "interpreter": python,
            "threads": "process pinned to one core",
            "categories": "one-hot indicators (HyperImpute classifies columns with <= 5 "
            "distinct values), decoded by argmax",
        }

    def _probed(self) -> tuple[str | None, str | None]:
        """(version, reason it cannot run), asked of the interpreter once."""
        if self._probe is None:
            self._probe = self._ask()
        return self._probe

    def _ask(self) -> tuple[str | None, str | None]:
        setup = f"; build it with: {HYPERIMPUTE_SETUP}"
        if not Path(self.python).exists():
            return None, f"not available: no interpreter at {self.python}{setup}"
        try:
            done = subprocess.run(
                [self.python, "-c", _HYPERIMPUTE_PROBE], capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired:
            return None, "not available: importing hyperimpute took more than 300 s"
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
            return None, f"not available: import failed: {tail[0]}{setup}"
        versions = json.loads(done.stdout.strip().splitlines()[-1])
        self.params["environment"] = versions
        if int(versions["pandas"].split(".")[0]) >= 3:
            # Not a crash but a silent no-op: refuse rather than report mean imputation.
            return None, (
                f"not available: pandas {versions['pandas']} in {self.python} turns "
                f"HyperImpute's chained assignments into no-ops (copy-on-write){setup}"
            )
        return versions["hyperimpute"], None

    @property
    def version(self) -> str | None:
        return self._probed()[0]

    def unavailable(self) -> str | None:
        return self._probed()[1]

    def fit_transform(self, X: np.ndarray, seed: int) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="hyperimpute-") as tmp:
            src, dst, info = (os.path.join(tmp, n) for n in ("X.npy", "out.npy", "info.json"))
            np.save(src, np.asarray(X, dtype=np.float64))
            env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "N_JOBS": "1"}
            done = subprocess.run(
                [self.python, "-c", _HYPERIMPUTE_SCRIPT, src, dst, info, str(seed)],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
            )
            if done.returncode != 0:
                raise RuntimeError(f"hyperimpute failed: {done.stderr.strip()[-2000:]}")
            self.info = json.loads(Path(info).read_text())
            out = np.load(dst)
        # Copy observed cells back bit for bit: only the missing ones are the method's.
        return np.where(np.isnan(X), out, X)


class RevmlBaseline(Peer):
    """One of revml's classical imputers (:mod:`revml.baselines`), with its defaults.

    They take DataFrames with category columns themselves (one-hot inside, revml's own
    encoder), so the frame goes in as it is.
    """

    package = "revml"

    def __init__(self, name: str) -> None:
        super().__init__()
        from revml import baselines

        self.name = name
        self._make = {
            "mean": lambda seed: baselines.StatisticImputer(strategy="mean"),
            "knn": lambda seed: baselines.NearestNeighborsImputer(),
            "iterative": lambda seed: baselines.IterativeRegressionImputer(random_state=seed),
            "gaussian": lambda seed: baselines.GaussianImputer(random_state=seed),
        }[name]
        est = self._make(0)
        self.params = {"class": type(est).__name__} | {
            k: v for k, v in est.get_params().items() if k != "random_state"
        }
        self.params = {k: _jsonable(v) for k, v in self.params.items()}

    def impute_frame(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        return self._make(seed).fit_transform(frame)

    def fit_transform(self, X: np.ndarray, seed: int) -> np.ndarray:
        return self._make(seed).fit_transform(X)


class Revml(Peer):
    """``revml.ReverseImputer(random_state=seed)`` with its defaults; reverse or direct.

    The two strategies share one fit (``strategy`` only affects ``transform``): the last
    fitted model is kept, keyed by the damaged data and the seed, and a second strategy
    on the same data reuses it. ``info["fit_seconds"]`` is that fit's time, which the
    runner adds to the transform time of both, so each is charged a whole fit.
    """

    package = "revml"
    _cache: ClassVar[dict[tuple[str, int], tuple[Any, float]]] = {}  # shared by both strategies

    def __init__(self, strategy: str = "reverse") -> None:
        super().__init__()
        from revml import ReverseImputer

        self.strategy = strategy
        self.name = "revml" if strategy == "reverse" else "revml_direct"
        self.params = {
            "class": "ReverseImputer",
            "strategy": strategy,
            "threads": "torch's thread count (the runner's --threads)",
            "others": "defaults",
        }
        self._cls = ReverseImputer

    @staticmethod
    def _key(data: Any, seed: int) -> tuple[str, int]:
        if isinstance(data, pd.DataFrame):
            raw = pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes()
        else:
            raw = np.ascontiguousarray(data).tobytes()
        return hashlib.sha1(raw).hexdigest(), seed

    def _run(self, data: Any, seed: int) -> Any:
        key = self._key(data, seed)
        if key in Revml._cache:
            model, fit_seconds = Revml._cache[key]
            reused = True
        else:
            t = time.perf_counter()
            import torch

            model = self._cls(random_state=seed, threads=torch.get_num_threads()).fit(data)
            fit_seconds = time.perf_counter() - t
            Revml._cache.clear()  # one table at a time: keep memory flat
            Revml._cache[key] = (model, fit_seconds)
            reused = False
        out = model.set_params(strategy=self.strategy).transform(data)
        self.info = {"fit_seconds": fit_seconds, "fit_reused": reused}
        return out

    def impute_frame(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        return self._run(frame, seed)

    def fit_transform(self, X: np.ndarray, seed: int) -> np.ndarray:
        return self._run(X, seed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return "nan"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


#: Every peer name, in the order results list them.
PEERS = (
    "mean",
    "knn",
    "iterative",
    "gaussian",
    "missforest",
    "miceforest",
    "miceforest_nomm",
    "hyperimpute",
    "revml_direct",
    "revml",
)


def make_peer(name: str) -> Peer:
    """A peer by name (see :data:`PEERS`)."""
    if name in ("mean", "knn", "iterative", "gaussian"):
        return RevmlBaseline(name)
    if name == "missforest":
        return MissForest()
    if name in ("miceforest", "miceforest_nomm"):
        return MiceForest(mean_matching=name == "miceforest")
    if name == "hyperimpute":
        return HyperImpute()
    if name in ("revml", "revml_direct"):
        return Revml("reverse" if name == "revml" else "direct")
    raise ValueError(f"unknown method {name!r}; expected some of {list(PEERS)}")


def make_peers(names: str | list[str] | None = None) -> list[Peer]:
    """Peers by name (comma-separated string or list; all of :data:`PEERS` for ``None``)."""
    if names is None or names == "all":
        names = list(PEERS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return [make_peer(n) for n in names]
