"""The user-facing estimator: :class:`ReverseImputer`."""

from __future__ import annotations

import copy
import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .backends import BACKENDS
from .model import MLPAutoencoder, default_architecture
from .prior import GaussianPrior, fit_gaussian
from .reference import ReverseConfig, split_autoencoder
from .reverse import (
    INITS,
    auto_batch_size,
    impute_direct,
    impute_reverse,
    initial_values,
    reconstruct,
)
from .tabular import TabularEncoder, array_missing_mask, is_dataframe, is_nan_like
from .training import MASKINGS, TrainConfig, default_train_config, train_autoencoder

STRATEGIES = ("reverse", "direct")
SCALINGS = ("auto", "minmax", "center", "none")
FILLS = ("auto", "mean", "zeros")
DROPOUT_MODES = ("auto", "hide", "scale")
COMBINES = ("mean", "lowest_loss")
#: ``prior_weight="auto"`` for tables (an autoencoder trained with masking, no
#: ``image_shape``), chosen on validation masks (``benchmarks/sweep_prior.py``).
PRIOR_WEIGHT_TABLES = 0.03
#: ... for at most this many features (validated on 10 to 30; EM's cost grows as D**3).
PRIOR_AUTO_MAX_FEATURES = 256

#: ``multiple_imputations``' default count when the imputer has no restarts of its own:
#: the customary number of multiple imputations (Rubin's m = 5, mice's default).
DEFAULT_IMPUTATIONS = 5


@dataclass
class ImputationDetails:
    """What :meth:`ReverseImputer.transform_details` returns.

    The last three fields are filled when restarts ran (``n_restarts >= 2``, reverse
    strategy) and are ``None`` otherwise.
    """

    X: Any  #: imputed data, same container type as the input
    X_before_clean: Any | None  #: reverse strategy: imputed values before the clean pass
    #: reverse strategy: final per-row reverse loss (scaled units); with restarts, the
    #: chosen restart's (``combine="lowest_loss"``) or the mean over restarts (``"mean"``)
    loss: np.ndarray | None
    backend: str | None  #: the execution path that ran
    #: per-value spread over the restarts, as :meth:`ReverseImputer.transform` with
    #: ``return_std=True`` returns it
    std: Any | None = None
    #: each restart's completed data, as :meth:`ReverseImputer.multiple_imputations`
    imputations: list | None = None
    #: (n_restarts, n_samples) final reverse loss of every restart (scaled units)
    restart_loss: np.ndarray | None = None


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return dev


def _check_2d(shape: tuple, name: str) -> None:
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be 2-D (samples x features), got shape {tuple(shape)}. Reshape your "
            "data: X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single sample"
        )


def _numeric_array(X: Any, name: str = "X", missing_values: Any = np.nan) -> np.ndarray:
    """``X`` as a float array (float dtypes kept, others float64) with NaN at missing entries.

    Never modifies ``X``; copies only when it has to.
    """
    if sp.issparse(X):
        raise TypeError(
            f"sparse input is not supported: {name} is a {type(X).__name__}; missing entries "
            "must be explicit NaN, so convert it with X.toarray()"
        )
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind in "OUS":
        if not is_nan_like(missing_values):
            marked = arr == missing_values
            if np.any(marked):
                arr = arr.astype(object)
                arr[marked] = np.nan
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{name} must be numeric (NaN marks missing values); could not convert "
                f"its {arr.dtype} entries to numbers: {err}. Pass a pandas DataFrame for "
                "categorical or string columns"
            ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if not is_nan_like(missing_values) and not isinstance(missing_values, str):
        marked = array_missing_mask(arr, missing_values) & ~np.isnan(arr)
        if marked.any():
            arr = arr.copy()
            arr[marked] = np.nan
    return arr


def _as_tensor(X: Any, name: str = "X", missing_values: Any = np.nan) -> torch.Tensor:
    """Validated CPU copy of a 2-D array-like; NaN (and ``missing_values``) mark missing
    entries.

    float64 input stays float64 (so values beyond float32's range, e.g. 1e39, survive until
    they are scaled in float64); every other dtype becomes float32.
    """
    if isinstance(X, torch.Tensor):
        t = X.detach()
        if t.is_complex():
            raise ValueError(f"Complex data not supported: {name} has dtype {t.dtype}")
        if t.is_meta:
            raise ValueError(f"{name} is a tensor on the 'meta' device: it holds no values")
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
        t = t.to(device="cpu", dtype=dtype)
        if not is_nan_like(missing_values) and not isinstance(missing_values, str):
            t = torch.where(t == float(missing_values), torch.nan, t)
    else:
        arr = _numeric_array(X, name, missing_values)
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
        t = torch.from_numpy(np.array(arr, dtype=dtype, order="C"))
    _check_2d(tuple(t.shape), name)
    if t.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if t.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={tuple(t.shape)}) while a minimum of 1 is required."
        )
    if torch.isinf(t).any():
        row, col = torch.nonzero(torch.isinf(t))[0].tolist()
        raise ValueError(
            f"{name} contains infinite values (first at row {row}, column {col}); only NaN "
            "may mark missing entries"
        )
    return t


def _scaled(x: torch.Tensor, lo: torch.Tensor, span: torch.Tensor, name: str = "X") -> torch.Tensor:
    """``(x - lo) / span`` computed in float64, as float32; a clear error if an observed
    value leaves float32's range (the autoencoder and the reverse loop run in float32)."""
    xs = ((x.double() - lo) / span).float()
    bad = torch.isinf(xs)
    if bad.any():
        row, col = torch.nonzero(bad)[0].tolist()
        raise ValueError(
            f"{name} has values too large to impute in float32: {int(bad.sum())} entries "
            f"exceed +-{torch.finfo(torch.float32).max:.3g} after scaling to the training "
            f"range (first: row {row}, column {col} = {float(x[row, col]):.6g}). Rescale the "
            "data, or use scaling='minmax' so it is scaled before float32"
        )
    return xs


def _mapped(details: ImputationDetails, fn) -> ImputationDetails:
    """``details`` with ``fn`` applied to every container (imputed data, spread, restarts)."""
    return ImputationDetails(
        fn(details.X),
        fn(details.X_before_clean),
        details.loss,
        details.backend,
        std=fn(details.std),
        imputations=None if details.imputations is None else [fn(a) for a in details.imputations],
        restart_loss=details.restart_loss,
    )


def _array_spread(imputations: list, miss: torch.Tensor) -> Any:
    """Sample std (``ddof=1``) over the restarts' arrays or tensors; 0 where observed.

    Computed in float64 and returned in the imputations' dtype and container.
    """
    if isinstance(imputations[0], torch.Tensor):
        first = imputations[0]
        stack = torch.stack([t.detach().cpu().double() for t in imputations])
        std = torch.where(miss, stack.std(dim=0, correction=1), 0.0)
        return std.to(device=first.device, dtype=first.dtype)
    stack = np.stack([np.asarray(a, dtype=np.float64) for a in imputations])
    std = np.where(miss.numpy(), stack.std(axis=0, ddof=1), 0.0)
    return std.astype(imputations[0].dtype)


class ReverseImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing values by reverse training through a frozen autoencoder.

    ``fit`` trains an MLP autoencoder on the data (loss on observed entries only), by
    default with masking: random parts of each row are hidden and must be reconstructed,
    so the network learns to fill gaps. For each row, ``transform`` starts from the
    autoencoder's direct fill, makes the missing entries trainable, freezes every weight
    and runs Adam on the per-row loss: reconstruction error of the whole input under
    counter-based input dropout (each entry must be predictable from the rest of the
    row, the completed row a fixed point of the autoencoder) plus a spherical penalty on
    the bottleneck (weight 0 by default) and, on tables, a Gaussian prior fitted to the
    data (``prior_weight``). A clean pass averaged over dropout masks gives the final
    values, and four restarts are averaged. Observed values come back bit-identical.

    The defaults were chosen on held-out training digits (``benchmarks/sweep_reverse.py``;
    results in the README): on MNIST they beat the direct pass of the same autoencoder,
    nearest neighbours and the seed's loop on missing-pixel accuracy and RMSE. The tables'
    settings (centred scaling, the Gaussian prior) were chosen on validation masks
    (``benchmarks/sweep_scaling.py``, ``benchmarks/sweep_prior.py``).

    Input can be a numpy array, a torch tensor (returned as a tensor on its own device) or
    a pandas DataFrame, returned as a DataFrame with the same index, columns and order.
    DataFrame columns may be numeric, integer, boolean, categorical or string; they go
    through :class:`revml.tabular.TabularEncoder` (min-max scaling, one-hot categories)
    and come back in their own dtype, with imputed categories always valid ones.

    **Restarts and multiple imputation.** With ``n_restarts=K >= 2`` (default 4) the
    reverse loop runs K times: restart 0 from the usual start, restarts 1..K-1 from it plus
    Gaussian noise (``restart_noise``) and with their own dropout masks. ``transform`` returns the
    restarts combined by ``combine``, ``transform(X, return_std=True)`` also their
    per-value spread, and :meth:`multiple_imputations` each restart's completed data.
    Everything stays deterministic for a ``random_state`` and keyed by row, so neither the
    batch size nor chunking changes a result. The spread measures how much the result
    depends on the start and the dropout masks, not a posterior: without dropout the loop
    often reaches the same fixed point from every start and the spread is tiny; with
    ``dropout > 0`` it grows and tracks the error better.

    Edge cases, by design:

    * **A feature with no observed value in fit.** DataFrame: the column is left out of
      the model and its missing cells stay missing (``RuntimeWarning``). Array or tensor:
      the feature is kept and imputed from the autoencoder alone, starting from 0
      (``RuntimeWarning``).
    * **A row with every value missing.** It is imputed like any other row: it starts at
      the autoencoder's output for an empty input and the reverse loop refines it, a
      typical row. All-missing rows come out nearly alike; they differ only as much as
      their (row-keyed) input dropout makes them.
    * **One feature.** There is nothing to impute it from, so no autoencoder is trained:
      missing values are filled with the column mean, with a ``UserWarning``
      (``autoencoder_`` is ``None``). A DataFrame with one categorical column has one
      feature per category, so it gets an autoencoder.

    Parameters
    ----------
    strategy : {"reverse", "direct"}
        ``"reverse"``: reverse training. ``"direct"``: one pass of the row (missing entries
        filled by ``fill``) through the autoencoder.
    autoencoder : torch.nn.Module, optional
        A pre-trained autoencoder mapping (B, D) to (B, D), used instead of training one
        (it is copied, never modified). Modules with ``encoder`` and ``decoder``
        attributes expose their bottleneck to the spherical term; others need
        ``sphere_weight=0``. It works in the imputer's scaled space (see ``scaling``).
    hidden : tuple of int, optional
        Encoder hidden widths (decoder mirrors). Default: sized from the number of features
        (:func:`revml.model.default_architecture`).
    bottleneck : int, optional
        Code width. Default: sized from the number of features.
    activation : str
        Hidden activation: "relu", "leaky_relu", "tanh", "sigmoid" or "identity".
    epochs, train_batch_size : int, optional
        Autoencoder training length and batch. Default: sized from the number of rows
        (:func:`revml.training.default_train_config`).
    learning_rate : float
        Adam learning rate of autoencoder training.
    mask_fraction : float
        With ``masking="none"``: share of observed entries replaced by the column means at
        the input during training (denoising); 0 trains a plain autoencoder.
    masking : {"mixed", "none"}
        ``"mixed"`` (default) trains the autoencoder to fill gaps: each row of each batch
        hides a random part of itself -- entries at a random rate, or a contiguous run of
        features, or (with ``image_shape``) a rectangle -- set to 0 at the input and scored
        at the output (:func:`revml.training.mixed_masks`); missing entries are 0 at the
        input too. The network is then sized for it (wider, with a wider code:
        :func:`revml.model.default_architecture`) and trained about 10,000 updates.
        ``"none"`` trains a plain autoencoder on the observed entries (the seed's method).
    self_condition : float
        With ``masking="mixed"``: share of training batches whose hidden entries are
        first filled by the network's own output, so it learns to refine a fill -- what
        the reverse loop hands it -- as well as to fill a blank.
    image_shape : (int, int), optional
        (height, width) of rows that are flattened images: masked training then also hides
        rectangles (holes, halves), not only bands of rows. Describes the data; nothing is
        tuned with it.
    n_steps : int
        Reverse-training steps per row.
    reverse_lr : float
        Adam learning rate of the reverse loop (scaled units).
    init : {"direct", "median", "zeros", "mean"}
        Starting value of the missing entries: the autoencoder's direct output (missing
        entries set to ``fill``), each feature's training median (on images, the
        background), zero, or the mean.
    dropout : float
        Input dropout rate of the reverse loop. Under hiding dropout (below) each step
        scores the row's entries from a random 55% of them (at the default 0.45):
        the missing values are pushed towards values the rest of the row predicts.
    dropout_mode : {"auto", "hide", "scale"}
        ``"hide"``: dropped inputs are set to 0, kept ones pass unchanged -- what an
        autoencoder trained with masking has learnt to read. ``"scale"``: inverted dropout
        (kept inputs times ``1 / (1 - dropout)``), the seed's form. ``"auto"``: hide for an
        autoencoder this imputer trained with masking, scale otherwise.
    missing_weight : float
        Weight of the missing entries' reconstruction error relative to observed ones
        (0.3: the observed entries carry the evidence).
    sphere_weight : float
        Weight of the spherical bottleneck penalty ``((||h|| - R) / R)**2``, with ``R`` the
        median code norm of the training rows (``radius_``). The seed's method uses it
        (0.01); with a masked autoencoder it costs accuracy on validation digits, so the
        default is 0.
    prior_weight : float or "auto"
        Weight of a Gaussian prior on the completed row: the loss gains
        ``prior_weight / D * (x - mu)^T P (x - mu)``, with mean ``mu`` and precision ``P``
        fitted to the training data by EM (:mod:`revml.prior`), and the clean pass combines
        the autoencoder's output (weight 1) with the prior. A few hundred table rows do not
        teach an autoencoder the near-linear relations between columns to the precision a
        normal model captures; the prior supplies them, the autoencoder the rest.
        ``"auto"``: 0.03 for an autoencoder this imputer trains with masking on rows that
        are not images (no ``image_shape``) with at most 256 features, else 0 (no prior).
        On the validation masks of ``benchmarks/sweep_prior.py`` it cut the tables' error
        by 2 to 25%.
    clean_pass : bool
        After the loop, replace the missing entries by the autoencoder's output once more
        (combined with the prior when ``prior_weight > 0``).
    clean_samples : int
        The clean pass averages the output over this many input-dropout masks (Monte Carlo
        dropout; the loop's own dropout rate and mode). 1: one pass without dropout.
    clamp : bool
        Keep imputed values inside each feature's training range.
    n_restarts : int
        Runs of the reverse loop (>= 1); see "Restarts and multiple imputation" above. 1
        is the plain loop; K restarts take K times as long.
    restart_noise : float
        Standard deviation (>= 0, in scaled units, where a feature spans 1) of the
        Gaussian noise added to the starting values of restarts 1..K-1 (then clamped with
        ``clamp``).
    combine : {"mean", "lowest_loss"}
        How restarts make the returned value: ``"mean"`` averages the restarts' imputed
        values (for a categorical column, the averaged one-hot outputs decode to the most
        probable category); ``"lowest_loss"`` takes, per row, the restart whose final
        reverse loss is lowest.
    fill : {"auto", "mean", "zeros"}
        What a direct pass (the direct strategy, ``init="direct"``) puts in the missing
        entries: ``"auto"`` is 0 for an autoencoder trained with masking (what it learnt
        missing looks like) and the column means otherwise.
    scaling : {"auto", "minmax", "center", "none"}
        ``"minmax"`` scales each feature to [0, 1] on the training data. ``"center"``
        divides by the same range but subtracts the column mean, so 0 -- what masked
        training and hiding dropout put in a hidden entry -- reads as "the average value"
        rather than as the column's minimum. ``"none"`` uses the values as they are.
        ``"auto"``: ``"center"`` for an autoencoder this imputer trains with masking on
        rows that are not images (no ``image_shape``); otherwise ``"minmax"``, unless every
        observed value already lies in [0, 1], which is used as is (images, where 0 is the
        blank background). Centring cut the reverse loop's error on the tables of
        ``benchmarks/comparison_table.py`` by 3 to 10% (validation masks,
        ``benchmarks/sweep_scaling.py``).
    backend : {"auto", "reference", "compile", "triton"}
        Execution path of the reverse loop (see :mod:`revml.backends`).
    batch_size : int, optional
        Rows per reverse batch. Default: bounded by a memory budget on the device.
        Results do not depend on it beyond float rounding.
    device : str or torch.device, optional
        Where the autoencoder lives; default CUDA if available, else the CPU.
    random_state : int, RandomState or None
        Seeds training, dropout and everything else random.
    verbose : bool
        Progress bars for training and imputation.
    missing_values : int, float, str, np.nan or None
        The placeholder of missing values, like scikit-learn's imputers: entries equal to
        it are imputed. NaN (and, in DataFrames, ``None`` and ``pandas.NA``) always mark
        missing entries too. A string placeholder needs a DataFrame or object array.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module or None
        The trained (frozen) autoencoder, in scaled space; ``None`` for one feature.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : numpy.ndarray
        Column names, when fitted on a DataFrame with string column names.
    encoder_ : revml.tabular.TabularEncoder or None
        The column encoder, when fitted on a DataFrame. The autoencoder then works on its
        encoded features, and the per-feature attributes below describe those.
    radius_ : float
        Radius of the spherical bottleneck penalty.
    prior_weight_ : float
        The prior's weight in use (``prior_weight`` with ``"auto"`` resolved at fit).
    prior_ : revml.prior.GaussianPrior or None
        The Gaussian prior fitted to the scaled training data (None without a prior).
    data_min_, data_range_ : numpy.ndarray
        Per-feature scaling: ``scaled = (X - data_min_) / data_range_``; ``data_min_`` is
        the offset (each feature's minimum, or its mean under ``"center"`` scaling).
    fill_values_ : numpy.ndarray
        Column means of the training data, in scaled units.
    medians_ : numpy.ndarray
        Column medians of the training data, in scaled units.
    history_ : list of float
        Autoencoder training loss per epoch (empty for a pre-trained autoencoder).

    Examples
    --------
    >>> import numpy as np
    >>> from revml import ReverseImputer
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 2))
    >>> X = np.c_[z, z @ rng.normal(size=(2, 4))]
    >>> X_missing = X.copy()
    >>> X_missing[rng.random(X.shape) < 0.2] = np.nan
    >>> imp = ReverseImputer(random_state=0, epochs=20, n_steps=50)
    >>> X_filled = imp.fit_transform(X_missing)
    >>> bool(np.isnan(X_filled).any())
    False
    >>> bool(np.array_equal(X_filled[~np.isnan(X_missing)], X_missing[~np.isnan(X_missing)]))
    True

    A DataFrame with an integer and a categorical column comes back with both intact:

    >>> import pandas as pd
    >>> n = pd.array(np.where(X[:, 1] > 0, 2, 1), dtype="Int64")
    >>> df = pd.DataFrame({"x": X[:, 0], "n": n, "c": np.where(X[:, 2] > 0, "hi", "lo")})
    >>> df.loc[:9, ["n", "c"]] = None
    >>> out = ReverseImputer(random_state=0, epochs=5, n_steps=10).fit_transform(df)
    >>> out.dtypes.astype(str).tolist(), sorted(set(out["c"])), sorted(set(out["n"].tolist()))
    (['float64', 'Int64', 'str'], ['hi', 'lo'], [1, 2])

    Five restarts: their mean, the spread of each value, and the five completed tables:

    >>> imp = ReverseImputer(n_restarts=5, dropout=0.1, random_state=0, epochs=5, n_steps=10)
    >>> out, std = imp.fit(df).transform(df, return_std=True)
    >>> std.shape == df.shape, bool((std.loc[10:, ["n", "c"]] == 0).all().all())
    (True, True)
    >>> len(imp.multiple_imputations(df))
    5
    """

    def __init__(
        self,
        *,
        strategy: str = "reverse",
        autoencoder: nn.Module | None = None,
        hidden: tuple[int, ...] | None = None,
        bottleneck: int | None = None,
        activation: str = "relu",
        epochs: int | None = None,
        train_batch_size: int | None = None,
        learning_rate: float = 1e-3,
        mask_fraction: float = 0.0,
        masking: str = "mixed",
        self_condition: float = 0.5,
        image_shape: tuple[int, int] | None = None,
        n_steps: int = 75,
        reverse_lr: float = 0.01,
        init: str = "direct",
        dropout: float = 0.45,
        dropout_mode: str = "auto",
        missing_weight: float = 0.3,
        sphere_weight: float = 0.0,
        prior_weight: float | str = "auto",
        clean_pass: bool = True,
        clean_samples: int = 8,
        clamp: bool = True,
        n_restarts: int = 4,
        restart_noise: float = 0.1,
        combine: str = "mean",
        fill: str = "auto",
        scaling: str = "auto",
        backend: str = "auto",
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        missing_values: Any = np.nan,
    ) -> None:
        self.strategy = strategy
        self.autoencoder = autoencoder
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.activation = activation
        self.epochs = epochs
        self.train_batch_size = train_batch_size
        self.learning_rate = learning_rate
        self.mask_fraction = mask_fraction
        self.masking = masking
        self.self_condition = self_condition
        self.image_shape = image_shape
        self.n_steps = n_steps
        self.reverse_lr = reverse_lr
        self.init = init
        self.dropout = dropout
        self.dropout_mode = dropout_mode
        self.missing_weight = missing_weight
        self.sphere_weight = sphere_weight
        self.prior_weight = prior_weight
        self.clean_pass = clean_pass
        self.clean_samples = clean_samples
        self.clamp = clamp
        self.n_restarts = n_restarts
        self.restart_noise = restart_noise
        self.combine = combine
        self.fill = fill
        self.scaling = scaling
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.missing_values = missing_values

    # ------------------------------------------------------------------ validation
    def _check_choices(self) -> None:
        for name, allowed in (
            ("strategy", STRATEGIES),
            ("init", INITS),
            ("fill", FILLS),
            ("masking", MASKINGS),
            ("dropout_mode", DROPOUT_MODES),
            ("scaling", SCALINGS),
            ("backend", BACKENDS),
            ("combine", COMBINES),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {allowed}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.mask_fraction < 1.0:
            raise ValueError(f"mask_fraction must be in [0, 1), got {self.mask_fraction}")
        if self.masking != "none" and self.mask_fraction > 0:
            raise ValueError(
                f"mask_fraction={self.mask_fraction} is the rate of masking='none' training; "
                f"masking={self.masking!r} draws its own rates: set one or the other"
            )
        if not 0.0 <= float(self.self_condition) <= 1.0:
            raise ValueError(f"self_condition must be in [0, 1], got {self.self_condition}")
        c = self.clean_samples
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1:
            raise ValueError(f"clean_samples must be an integer >= 1, got {c!r}")
        if int(self.n_steps) < 0:
            raise ValueError(f"n_steps must be >= 0, got {self.n_steps}")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("reverse_lr", "learning_rate"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("missing_weight", "sphere_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        w = self.prior_weight
        if not (
            (isinstance(w, str) and w == "auto")
            or (
                isinstance(w, numbers.Real)
                and not isinstance(w, bool)
                and np.isfinite(w)
                and w >= 0
            )
        ):
            raise ValueError(f"prior_weight must be 'auto' or a finite number >= 0, got {w!r}")
        n = self.n_restarts
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n_restarts must be an integer >= 1, got {n!r}")
        noise = self.restart_noise
        if (
            isinstance(noise, bool)
            or not isinstance(noise, numbers.Real)
            or not (np.isfinite(noise) and noise >= 0)
        ):
            raise ValueError(
                f"restart_noise must be a finite number >= 0 (a standard deviation in scaled "
                f"units, where a feature spans 1), got {noise!r}"
            )

    def _restarts_run(self) -> bool:
        """Whether :meth:`transform` runs several restarts of the reverse loop."""
        return (
            int(self.n_restarts) >= 2
            and self.strategy == "reverse"
            and self.autoencoder_ is not None
        )

    def _check_restarts(self, what: str) -> None:
        """A clear error where ``what`` asks for restarts that cannot run."""
        if self.strategy == "direct":
            raise ValueError(
                f"{what} needs restarts of the reverse loop, but strategy='direct' is one "
                "deterministic pass through the autoencoder; use strategy='reverse'"
            )
        if self.autoencoder_ is None:
            raise ValueError(
                f"{what} needs restarts of the reverse loop, but this imputer was fitted on a "
                "single feature: it has no autoencoder and fills the column mean"
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> ReverseImputer:
        """Train the autoencoder on ``X`` (NaN marks missing entries).

        Parameters
        ----------
        X : array-like, torch.Tensor or pandas.DataFrame of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._check_choices()
        if is_dataframe(X):
            if len(X) == 0:
                raise ValueError("X has no rows")
            self.encoder_ = TabularEncoder(
                missing_values=self.missing_values, scale=self.scaling != "none"
            ).fit(X)
            if self.encoder_.width == 0:
                raise ValueError("X has no observed value: every entry is missing")
            x = _as_tensor(self.encoder_.encode(X))
        else:
            self.encoder_ = None
            x = _as_tensor(X, missing_values=self.missing_values)
        validate_data(self, X, reset=True, skip_check_array=True)
        self._fit_tensor(x)
        return self

    def _fit_tensor(self, x: torch.Tensor) -> None:
        """Fit the numeric core on a validated (N, D) tensor (float32, or float64)."""
        n, d = x.shape
        observed = ~torch.isnan(x)
        if not observed.any():
            raise ValueError("X has no observed value: every entry is missing")
        device = _resolve_device(self.device)
        rng = check_random_state(self.random_state)
        train_seed = int(rng.randint(np.iinfo(np.int32).max))

        # Per-feature scaling; features never observed get the identity.
        xd = x.double()
        col_min = torch.where(observed, xd, torch.inf).amin(0)
        col_max = torch.where(observed, xd, -torch.inf).amax(0)
        empty = ~observed.any(0)
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} feature(s) have no observed value in X (indices "
                f"{torch.nonzero(empty).flatten().tolist()[:10]}); they are imputed from the "
                "autoencoder alone, starting from 0",
                RuntimeWarning,
                stacklevel=3,
            )
        col_min = torch.where(empty, 0.0, col_min)
        col_max = torch.where(empty, 1.0, col_max)
        in_unit = bool((col_min >= 0).all() and (col_max <= 1).all())
        masked = self.autoencoder is None and self.masking != "none"
        mode = self._scaling_mode(in_unit, masked)
        if mode == "none":
            lo = torch.zeros(d, dtype=torch.float64)
            span = torch.ones(d, dtype=torch.float64)
        else:
            span = torch.where(col_max > col_min, col_max - col_min, 1.0)
            if not torch.isfinite(span).all():
                col = int(torch.nonzero(~torch.isfinite(span))[0])
                raise ValueError(
                    f"feature {col} spans more than float64 can hold (min {col_min[col]:.6g}, "
                    f"max {col_max[col]:.6g}); rescale it"
                )
            if mode == "center":  # the column means (0 for a feature never observed)
                lo = torch.where(observed, xd, 0.0).sum(0) / observed.sum(0).clamp_min(1)
            else:
                lo = col_min
        self.data_min_ = lo.numpy()
        self.data_range_ = span.numpy()
        xs = _scaled(xd, lo, span)
        sums = torch.where(observed, xs, 0.0).sum(0)
        counts = observed.sum(0)
        self.fill_values_ = torch.where(counts > 0, sums / counts.clamp_min(1), 0.0).numpy()
        medians = torch.nanmedian(torch.where(observed, xs, torch.nan), dim=0).values
        self.medians_ = torch.where(counts > 0, medians, 0.0).numpy()
        self.clip_min_ = torch.where(empty, 0.0, ((col_min - lo) / span)).float().numpy()
        self.clip_max_ = torch.where(empty, 1.0, ((col_max - lo) / span)).float().numpy()

        fill = torch.from_numpy(self.fill_values_)
        if d == 1 and self.autoencoder is None:
            warnings.warn(
                "ReverseImputer needs at least 2 features to impute one from the others; "
                "X has 1 feature, so its missing values are filled with the column mean",
                UserWarning,
                stacklevel=3,
            )
            self.autoencoder_ = None
            self.device_ = device
            self.radius_ = 1.0
            self.history_ = []
            self.masked_ = False
            self.prior_weight_, self.prior_ = 0.0, None
            return
        if self.autoencoder is not None:
            module = copy.deepcopy(self.autoencoder).to(device)
            self.history_ = []
        else:
            hidden, bottleneck = default_architecture(d, masked=masked)
            scaled_unit = bool(xs[observed].min() >= 0 and xs[observed].max() <= 1)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(train_seed)
                module = MLPAutoencoder(
                    d,
                    hidden=self.hidden if self.hidden is not None else hidden,
                    bottleneck=self.bottleneck if self.bottleneck is not None else bottleneck,
                    activation=self.activation,
                    output_activation="sigmoid" if scaled_unit else "identity",
                ).to(device)
            auto = default_train_config(n, seed=train_seed, masked=masked)
            cfg = TrainConfig(
                epochs=int(self.epochs) if self.epochs is not None else auto.epochs,
                batch_size=int(self.train_batch_size or auto.batch_size),
                lr=float(self.learning_rate),
                mask_fraction=float(self.mask_fraction),
                masking=self.masking,
                self_condition=float(self.self_condition) if masked else 0.0,
                image_shape=self._image_shape(d),
                seed=train_seed,
            )
            history = train_autoencoder(
                module, xs.to(device), fill.to(device), cfg, verbose=bool(self.verbose)
            )
            self.history_ = history.loss
        module.eval().requires_grad_(False)
        with torch.no_grad():
            probe = module(fill.to(device)[None].expand(2, d))
        if tuple(probe.shape) != (2, d):
            raise ValueError(
                f"the autoencoder maps (B, {d}) to {tuple(probe.shape)}; it must return (B, {d})"
            )
        self.autoencoder_ = module
        self.device_ = device
        self.masked_ = masked
        if masked:  # the autoencoder saw missing and hidden entries as 0
            fill = torch.zeros_like(fill)
        self.radius_ = self._code_radius(xs, observed, fill, device)
        self.prior_weight_ = self._resolved_prior_weight(masked, d)
        self.prior_ = None
        if self.prior_weight_ > 0:
            self.prior_ = fit_gaussian(xs, observed, seed=train_seed)

    def _resolved_prior_weight(self, masked: bool, d: int) -> float:
        """``prior_weight`` with ``"auto"`` resolved (see the class docstring)."""
        if self.prior_weight != "auto":
            return float(self.prior_weight)
        tables = masked and self.image_shape is None
        return PRIOR_WEIGHT_TABLES if tables and d <= PRIOR_AUTO_MAX_FEATURES else 0.0

    def _code_radius(self, xs, observed, fill, device) -> float:
        encode, decode = split_autoencoder(self.autoencoder_)
        if decode is None:
            return 1.0
        # The median code norm of (up to 10k) training rows: the sphere the codes live near.
        sample = torch.where(observed, xs, fill)[:10_000].to(device)
        with torch.no_grad():
            norms = encode(sample).flatten(1).norm(dim=1)
        return float(max(norms.median().item(), 1e-6))

    # ------------------------------------------------------------------ transform
    def reverse_config(self, seed: int = 0) -> ReverseConfig:
        """The :class:`~revml.reference.ReverseConfig` this imputer's loop runs with."""
        check_is_fitted(self, "autoencoder_")
        return ReverseConfig(
            n_steps=int(self.n_steps),
            lr=float(self.reverse_lr),
            dropout=float(self.dropout),
            dropout_rescale=not self._hides(),
            missing_weight=float(self.missing_weight),
            sphere_weight=float(self.sphere_weight),
            radius=float(self.radius_),
            seed=int(seed),
            prior_weight=self._prior_weight_in_use(),
            prior=self._device_prior(),
        )

    def _prior_weight_in_use(self) -> float:
        """The fitted prior weight, or the parameter if it was set (to a number) since."""
        fitted = float(getattr(self, "prior_weight_", 0.0))
        if self.prior_weight == "auto":
            return fitted
        weight = float(self.prior_weight)
        if weight > 0 and getattr(self, "prior_", None) is None:
            raise ValueError(
                f"prior_weight={weight} but this imputer was fitted without a prior "
                f"(prior_weight_={fitted}); fit it again with prior_weight={weight}"
            )
        return weight

    def _device_prior(self) -> GaussianPrior | None:
        """The prior as float32 on the autoencoder's device (moved once, then reused)."""
        prior = getattr(self, "prior_", None)
        if prior is None:
            return None
        cached = getattr(self, "_prior_on_device", None)
        if cached is None or cached[0] is not prior or cached[1] != self.device_:
            cached = (prior, self.device_, prior.to(self.device_, torch.float32))
            self._prior_on_device = cached
        return cached[2]

    def _image_shape(self, d: int) -> tuple[int, int] | None:
        if self.image_shape is None:
            return None
        shape = tuple(int(v) for v in self.image_shape)
        if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != d:
            raise ValueError(
                f"image_shape={self.image_shape!r} must be (height, width) with height * width "
                f"equal to the number of features ({d})"
            )
        return shape

    def _scaling_mode(self, in_unit: bool, masked: bool) -> str:
        """``scaling`` with ``"auto"`` resolved (see the class docstring); ``masked``: this
        imputer trains its autoencoder with masking."""
        if self.scaling != "auto":
            return self.scaling
        if masked and self.image_shape is None:
            return "center"
        return "none" if in_unit else "minmax"

    def _hides(self) -> bool:
        """Whether input dropout hides entries (masked training) or rescales the rest."""
        if self.dropout_mode == "auto":
            return bool(getattr(self, "masked_", False))
        return self.dropout_mode == "hide"

    def _fill_vector(self) -> torch.Tensor:
        """What missing entries hold for a direct pass (scaled units): ``fill``; ``"auto"``
        is 0 for an autoencoder trained with masking (what it saw there), else the means."""
        means = torch.from_numpy(self.fill_values_)
        zeros = self.fill == "zeros" or (
            self.fill == "auto" and bool(getattr(self, "masked_", False))
        )
        return torch.zeros_like(means) if zeros else means

    def _transform_seed(self) -> int:
        rng = check_random_state(self.random_state)
        rng.randint(np.iinfo(np.int32).max)  # the first draw seeded training
        return int(rng.randint(np.iinfo(np.int32).max))

    def transform(self, X: Any, *, return_std: bool = False) -> Any:
        """Impute the missing entries of ``X`` (NaN, or equal to ``missing_values``).

        Parameters
        ----------
        X : array-like, torch.Tensor or pandas.DataFrame of shape (n_samples, n_features)
        return_std : bool
            Also return the per-value spread over the restarts (needs ``n_restarts >= 2``
            and the reverse strategy).

        Returns
        -------
        X_imputed
            The same kind of container as ``X``: an array, a ``torch.Tensor`` on the same
            device, or a DataFrame with the same index, columns and dtypes. Observed
            entries are copied bit for bit and ``X`` is not modified. With restarts, the
            restarts combined by ``combine``.
        std
            Only with ``return_std=True``: X's shape and container type (a float DataFrame
            for a DataFrame), 0 on observed entries. For a numeric or integer column, the
            sample standard deviation (``ddof=1``) of the restarts' imputed values in the
            original units, i.e. ``np.std(np.stack(imp.multiple_imputations(X)), axis=0,
            ddof=1)``; for a categorical or boolean column, the fraction of restarts whose
            value differs from the returned one; NaN where a cell stays missing (a column
            with no observed value in fit). ``set_output(transform="pandas")`` wraps only
            ``X_imputed``: ``std`` keeps the input's container type.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 4))
        >>> X[::5, 1] = np.nan
        >>> imp = ReverseImputer(n_restarts=3, random_state=0, epochs=3, n_steps=10).fit(X)
        >>> X_filled, std = imp.transform(X, return_std=True)
        >>> bool((std[::5, 1] > 0).all()), bool((std[~np.isnan(X)] == 0).all())
        (True, True)
        """
        check_is_fitted(self, "autoencoder_")
        self._check_choices()
        if not return_std:
            return self._details(X, runs=int(self.n_restarts)).X
        self._check_restarts("return_std=True")
        if int(self.n_restarts) < 2:
            raise ValueError(
                "return_std=True reports the spread of several restarts of the reverse loop, "
                f"but n_restarts={self.n_restarts}: set n_restarts >= 2, e.g. "
                "imp.set_params(n_restarts=5)"
            )
        details = self._details(X, runs=int(self.n_restarts), keep=True, std=True)
        return details.X, details.std

    def multiple_imputations(self, X: Any, n_imputations: int | None = None) -> list:
        """Several completed copies of ``X``: one per restart of the reverse loop.

        Element ``r`` is what restart ``r`` alone gives (after the clean pass, if enabled):
        element 0 is the plain, unperturbed loop, the others start from the same values
        plus ``restart_noise`` Gaussian noise and draw their own dropout masks. Restarts
        are deterministic for a ``random_state``, so a shorter list is a prefix of a
        longer one, and each element's rows do not depend on the batch size.

        Parameters
        ----------
        X : array-like, torch.Tensor or pandas.DataFrame of shape (n_samples, n_features)
        n_imputations : int, optional
            How many completed copies (restarts ``0 .. n_imputations - 1``). Default:
            ``n_restarts``, or 5 (the customary number of multiple imputations) when
            ``n_restarts`` is 1.

        Returns
        -------
        list
            ``n_imputations`` containers of :meth:`transform`'s type (``set_output`` does
            not apply here). Observed entries are the same in every one.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 4))
        >>> X[::5, 1] = np.nan
        >>> imp = ReverseImputer(random_state=0, epochs=3, n_steps=10).fit(X)
        >>> completed = imp.multiple_imputations(X, n_imputations=3)
        >>> len(completed), bool(np.array_equal(completed[0], imp.transform(X)))
        (3, False)
        >>> plain = imp.set_params(n_restarts=1).transform(X)  # restart 0 alone
        >>> bool(np.array_equal(completed[0], plain))
        True
        """
        check_is_fitted(self, "autoencoder_")
        self._check_choices()
        self._check_restarts("multiple_imputations")
        if n_imputations is None:
            n = int(self.n_restarts)
            n_imputations = n if n >= 2 else DEFAULT_IMPUTATIONS
        m = n_imputations
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
            raise ValueError(f"n_imputations must be an integer >= 1, got {m!r}")
        return self._details(X, runs=int(m), keep=True).imputations

    def transform_details(self, X: Any, *, row_offset: int = 0) -> ImputationDetails:
        """:meth:`transform` plus the reverse loop's diagnostics.

        Row ``i`` of ``X`` draws the dropout randomness (and the restarts' noise) of sample
        ``row_offset + i``: a chunk or shard that starts at row ``r`` of a larger table,
        passed with ``row_offset=r``, is imputed as it would be in one call on the whole
        table. With ``n_restarts >= 2`` (reverse strategy) the details also hold ``std``,
        ``imputations`` and ``restart_loss`` (see :class:`ImputationDetails`).
        """
        check_is_fitted(self, "autoencoder_")
        self._check_choices()
        restarts = self._restarts_run()
        return self._details(X, row_offset, runs=int(self.n_restarts), keep=restarts, std=restarts)

    def _details(
        self, X: Any, row_offset: int = 0, *, runs: int, keep: bool = False, std: bool = False
    ) -> ImputationDetails:
        """Impute ``X`` with ``runs`` restarts; ``keep`` each restart's completed data and
        compute their ``std`` (which needs them)."""
        if is_dataframe(X) or self.encoder_ is not None:
            return self._transform_table(X, row_offset, runs=runs, keep=keep, std=std)
        x = _as_tensor(X, missing_values=self.missing_values)
        validate_data(self, X, reset=False, skip_check_array=True)
        return self._impute(X, x, row_offset, runs=runs, keep=keep, std=std)

    def _transform_table(
        self, X: Any, row_offset: int = 0, *, runs: int, keep: bool, std: bool
    ) -> ImputationDetails:
        """DataFrame input, or array input to an imputer fitted on a DataFrame."""
        if self.encoder_ is None:  # fitted on an array: a DataFrame of numbers is fine
            validate_data(self, X, reset=False, skip_check_array=True)
            arr = _numeric_array(X.to_numpy(), "X", self.missing_values)
            details = self._impute(arr, _as_tensor(arr), row_offset, runs=runs, keep=keep, std=std)

            def wrap(a):
                return None if a is None else pd.DataFrame(a, index=X.index, columns=X.columns)

            return _mapped(details, wrap)
        if not is_dataframe(X):  # fitted on a DataFrame: read the array's columns as its own
            if sp.issparse(X):
                _numeric_array(X)  # the sparse-input error
            arr = np.asarray(X)
            _check_2d(arr.shape, "X")
            validate_data(self, X, reset=False, skip_check_array=True)
            frame = pd.DataFrame(arr, columns=self.encoder_.columns_)
            details = self._transform_table(frame, row_offset, runs=runs, keep=keep, std=std)
            return _mapped(details, lambda f: None if f is None else f.to_numpy())
        validate_data(self, X, reset=False, skip_check_array=True)
        if len(X) == 0:
            raise ValueError("X has no rows")
        encoded = self.encoder_.encode(X)
        details = self._impute(encoded, _as_tensor(encoded), row_offset, runs=runs, keep=keep)

        def decode(a):
            return None if a is None else self.encoder_.decode(X, a)

        out = _mapped(details, decode)
        if std and out.imputations is not None:
            out.std = self._table_spread(X, out.X, out.imputations)
        return out

    def _table_spread(self, X: pd.DataFrame, combined: pd.DataFrame, imputations: list):
        """Per-cell spread of decoded restarts: see :meth:`transform`'s ``std``."""
        enc = self.encoder_
        cells = enc.missing(X)
        std = np.zeros(X.shape, dtype=np.float64)
        for j, spec in enumerate(enc.specs_):
            rows = cells[:, j]
            if not rows.any():
                continue
            if spec.kind == "empty":  # never imputed: the cells stay missing
                std[rows, j] = np.nan
            elif spec.kind in ("numeric", "integer"):
                values = np.stack(
                    [f.iloc[:, j].to_numpy(dtype=np.float64, na_value=np.nan) for f in imputations]
                )
                std[rows, j] = values[:, rows].std(axis=0, ddof=1)
            else:  # categorical and boolean: the share of restarts that disagree
                chosen = combined.iloc[:, j].to_numpy(dtype=object)[rows]
                differ = [f.iloc[:, j].to_numpy(dtype=object)[rows] != chosen for f in imputations]
                std[rows, j] = np.mean(differ, axis=0)
        return pd.DataFrame(std, index=X.index, columns=X.columns)

    def _impute(
        self,
        X: Any,
        x: torch.Tensor,
        row_offset: int = 0,
        *,
        runs: int = 1,
        keep: bool = False,
        std: bool = False,
    ) -> ImputationDetails:
        """Impute the validated tensor ``x``; results go into copies of the container ``X``.

        ``runs`` restarts of the reverse loop are combined by ``combine``; ``keep`` returns
        each one's completed data too, and ``std`` their spread (array containers only:
        tables take theirs from the decoded restarts).
        """
        if x.shape[1] != len(self.data_min_):
            raise ValueError(
                f"X has {x.shape[1]} features, but ReverseImputer is expecting "
                f"{len(self.data_min_)} features as input"
            )
        miss = torch.isnan(x)
        if not miss.any():
            details = ImputationDetails(self._restore(X, x, miss), None, None, None)
            if keep:
                details.imputations = [self._restore(X, x, miss) for _ in range(runs)]
                if std:
                    details.std = _array_spread(details.imputations, miss)
            return details
        xs = self._scale(x)
        means = torch.from_numpy(self.fill_values_)
        device = self.device_
        module = self.autoencoder_
        if module is None:  # one feature: nothing to impute from but its mean
            xs_imp = torch.where(miss, means.float(), xs)
            return ImputationDetails(
                self._restore(X, self._unscale(xs_imp), miss), None, None, "mean"
            )
        batch = int(self.batch_size or auto_batch_size(module, x.shape[1], device))
        if self.strategy == "direct":
            fill = self._fill_vector()
            xs_imp = impute_direct(
                module, xs, miss, fill, batch_size=batch, device=device, verbose=bool(self.verbose)
            )
            return ImputationDetails(
                self._restore(X, self._unscale(xs_imp), miss), None, None, None
            )
        if runs >= 2 and float(self.restart_noise) == 0 and float(self.dropout) == 0:
            warnings.warn(
                f"{runs} restarts with restart_noise=0 and dropout=0 all run the same "
                "deterministic loop: they are identical and their spread is 0. Set "
                "restart_noise > 0",
                UserWarning,
                stacklevel=4,
            )
        clip_lo = torch.from_numpy(self.clip_min_) if self.clamp else None
        clip_hi = torch.from_numpy(self.clip_max_) if self.clamp else None
        cfg = self.reverse_config(self._transform_seed())
        backend = self.backend
        outs = []
        for r in range(runs):
            out = impute_reverse(
                module,
                xs,
                miss,
                cfg,
                init=self.init,
                means=means,
                medians=torch.from_numpy(self.medians_),
                lo=clip_lo,
                hi=clip_hi,
                backend=backend,
                batch_size=batch,
                device=device,
                clean=bool(self.clean_pass),
                verbose=bool(self.verbose),
                row_offset=int(row_offset),
                restart=r,
                restart_noise=float(self.restart_noise),
                direct_fill=self._fill_vector(),
                clean_samples=int(self.clean_samples),
            )
            outs.append(out)
            # The path restart 0 settled on (after any compile fallback) serves the others.
            backend = out.backend
        final = [o.x_clean if o.x_clean is not None else o.x for o in outs]
        losses = torch.stack([o.loss for o in outs])
        xs_imp, loss = self._combined(final, losses)
        before = None
        if self.clean_pass:
            before = self._restore(
                X, self._unscale(self._combined([o.x for o in outs], losses)[0]), miss
            )
        details = ImputationDetails(
            self._restore(X, self._unscale(xs_imp), miss), before, loss.numpy(), outs[0].backend
        )
        if runs >= 2:
            details.restart_loss = losses.numpy()
        if keep:
            details.imputations = [self._restore(X, self._unscale(v), miss) for v in final]
            if std:
                details.std = _array_spread(details.imputations, miss)
        return details

    def _combined(
        self, values: list[torch.Tensor], losses: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The restarts' values (each (N, D)) and losses (K, N) combined by ``combine``."""
        if len(values) == 1:
            return values[0], losses[0]
        if self.combine == "mean":
            return torch.stack(values).double().mean(0), losses.mean(0)
        # A diverged restart's loss may be NaN: it is never the lowest.
        best = torch.nan_to_num(losses, nan=torch.inf).argmin(0)
        rows = torch.arange(losses.shape[1])
        return torch.stack(values)[best, rows], losses[best, rows]

    def _require_autoencoder(self) -> nn.Module:
        check_is_fitted(self, "autoencoder_")
        if self.autoencoder_ is None:
            raise ValueError(
                "this imputer was fitted on a single feature: it has no autoencoder (its "
                "transform fills the column mean)"
            )
        return self.autoencoder_

    def _on_table(self, X: Any, fn, every_cell: bool) -> Any:
        """Run ``fn`` (encoded array -> encoded array) on a table and decode the result."""
        frame = X if is_dataframe(X) else self.encoder_._as_frame(X)
        encoded = self.encoder_.encode(frame)
        n_columns = len(self.encoder_.columns_)
        cells = np.ones((len(frame), n_columns), dtype=bool) if every_cell else None
        out = self.encoder_.decode(frame, fn(encoded), cells)
        return out if is_dataframe(X) else out.to_numpy()

    def _encoded_call(self, fn, X: Any, every_cell: bool) -> Any:
        """Route ``fn`` through the column encoder (or a DataFrame of numbers) if needed."""
        if self.encoder_ is not None:
            return self._on_table(X, lambda enc: fn(enc, np.nan), every_cell)
        if is_dataframe(X):
            return pd.DataFrame(
                fn(X.to_numpy(), self.missing_values), index=X.index, columns=X.columns
            )
        return fn(X, self.missing_values)

    def direct_output(self, X: Any) -> Any:
        """The autoencoder's whole reconstruction of ``X`` (missing entries = ``fill``),
        in the original units, observed entries included (a diagnostic, not an imputation).

        An array for array input; a DataFrame (every cell decoded) for a DataFrame.
        """
        self._require_autoencoder()
        return self._encoded_call(self._direct_output_array, X, every_cell=True)

    def _direct_output_array(self, X: Any, missing_values: Any) -> np.ndarray:
        module = self.autoencoder_
        x = _as_tensor(X, missing_values=missing_values)
        miss = torch.isnan(x)
        xs = self._scale(x)
        filled = torch.where(miss, self._fill_vector(), xs)
        out = reconstruct(
            module,
            filled,
            batch_size=auto_batch_size(module, x.shape[1], self.device_),
            device=self.device_,
        )
        return self._unscale(out).numpy()

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the fitted scaled space (float64 arithmetic, float32 result)."""
        return _scaled(x, torch.from_numpy(self.data_min_), torch.from_numpy(self.data_range_))

    def _unscale(self, xs: torch.Tensor) -> torch.Tensor:
        return xs.double() * torch.from_numpy(self.data_range_) + torch.from_numpy(self.data_min_)

    def _restore(self, X: Any, values: torch.Tensor, miss: torch.Tensor) -> Any:
        """A copy of ``X`` with ``values`` written into its missing entries only.

        The last line of defence against silent garbage: a non-finite value for a missing
        entry becomes the column's training mean (with a warning), and imputed values are
        clipped to the finite range of the output dtype (float16 overflows at 65504).
        """
        bad = miss & ~torch.isfinite(values)
        if bad.any():
            warnings.warn(
                f"{int(bad.sum())} imputed value(s) in {int(bad.any(1).sum())} row(s) were not "
                "finite (the autoencoder emitted NaN/inf); they are filled with the column's "
                "training mean instead",
                RuntimeWarning,
                stacklevel=4,
            )
            values = torch.where(bad, self._unscale(torch.from_numpy(self.fill_values_)), values)
        if isinstance(X, torch.Tensor):
            out = X.detach().clone()
            if not out.is_floating_point():
                out = out.float()
            big = torch.finfo(out.dtype).max
            fill = values[miss].clamp(-big, big).to(device=out.device, dtype=out.dtype)
            out[miss.to(out.device)] = fill
            return out
        arr = np.asarray(X)
        if arr.dtype.kind in "OUS":
            arr = _numeric_array(arr, "X", self.missing_values)
        out = np.array(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64, copy=True)
        m = miss.numpy()
        big = np.finfo(out.dtype).max
        out[m] = np.clip(values.numpy()[m], -big, big).astype(out.dtype)
        return out

    def initial_values(self, X: Any) -> Any:
        """The starting point of the reverse loop for ``X`` (original units)."""
        self._require_autoencoder()
        return self._encoded_call(self._initial_values_array, X, every_cell=False)

    def _initial_values_array(self, X: Any, missing_values: Any) -> np.ndarray:
        x = _as_tensor(X, missing_values=missing_values)
        miss = torch.isnan(x)
        xs = self._scale(x)
        with torch.no_grad():
            x0 = initial_values(
                self.autoencoder_,
                xs.to(self.device_),
                miss.to(self.device_),
                self.init,
                torch.from_numpy(self.fill_values_).to(self.device_),
                torch.from_numpy(self.medians_).to(self.device_),
                self._fill_vector().to(self.device_),
            )
        return self._restore(X, self._unscale(x0.cpu()), miss)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write this fitted imputer to the folder ``path`` (created if needed).

        ``model.safetensors`` holds the autoencoder's weights; ``config.json`` the
        parameters, fitted attributes, architecture, column encoder, revml version and a
        checksum of each file. Nothing is pickled. Only
        :class:`~revml.model.MLPAutoencoder` autoencoders can be saved.

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> X = np.random.default_rng(0).normal(size=(40, 4))
        >>> X[::7, 1] = np.nan
        >>> imp = ReverseImputer(random_state=0, epochs=2, n_steps=5).fit(X)
        >>> folder = imp.save(tempfile.mkdtemp() + "/model")
        >>> bool(np.array_equal(ReverseImputer.load(folder).transform(X), imp.transform(X)))
        True
        """
        from .persistence import save_imputer

        return save_imputer(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> ReverseImputer:
        """Read an imputer written by :meth:`save`; its imputations are bit-identical.

        ``device`` overrides the saved ``device`` parameter (e.g. ``"cpu"`` for a model
        saved on a GPU machine; results then agree only up to float rounding).
        """
        from .persistence import load_imputer

        return load_imputer(path, device=device)
