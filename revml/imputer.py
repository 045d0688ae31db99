"""The user-facing estimator: :class:`ReverseImputer`.

It keeps scikit-learn's contract (parameters, ``fit``, ``transform``, save and load) and
delegates: parameters are checked against :mod:`revml.params`, ``fit`` produces a
:class:`~revml.state.FittedState` (:mod:`revml.fitting`), ``transform`` hands it to
:mod:`revml.imputation`, containers go through :mod:`revml.containers` and files through
:mod:`revml.persistence`.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from . import params as param_table
from . import persistence
from .blending import (
    blend_wanted,
    categorical_groups,
    fit_blend,
    numeric_features,
    validation_cells,
)
from .containers import (
    as_frame_of,
    as_tensor,
    check_2d,
    numeric_array,
    through_table,
    write_missing,
)
from .errors import DataError, InvalidParameterError
from .fitting import fit_state, seeds
from .imputation import ImputationDetails, impute, reverse_config
from .reference import ReverseConfig
from .reverse import auto_batch_size, initial_values, reconstruct
from .state import FittedState
from .tabular import TabularEncoder, is_dataframe
from .training import TrainingHook

__all__ = ["ImputationDetails", "ReverseImputer"]

#: ``multiple_imputations``' default count when the imputer has no restarts of its own:
#: the customary number of multiple imputations (Rubin's m = 5, mice's default).
DEFAULT_IMPUTATIONS = 5


def _fitted(name: str, doc: str) -> property:
    """A fitted attribute read from ``state_`` (``AttributeError`` before ``fit``)."""

    def get(self):
        try:
            state = self.__dict__["state_"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} is not fitted: no {name}_") from None
        return getattr(state, name)

    return property(get, doc=doc)


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

    **Restarts and multiple imputation.** With ``n_restarts=K >= 2`` (default 2) the
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
        (:func:`revml.training.default_train_config`), the length an upper bound that early
        stopping usually cuts short. ``epochs`` forces a fixed length (no early stopping).
    early_stopping : bool
        With masked training of at least 10,000 rows and no ``epochs``: hold out 10% of the
        rows (at most 5,000), score them with fixed training-style masks every epoch (at
        least 100 updates apart), halve the learning rate after 2 scores without a 0.1%
        gain, stop after 6, and keep the best weights (``best_update_``,
        ``validation_curve_``, ``stop_reason_``).
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
        :func:`revml.model.default_architecture`) and trained about 10,000 updates;
        about 2,500 on a table of fewer than 10,000 rows that the tree blend also imputes
        (``blend="auto"``, the default).
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
        dropout; the loop's own dropout rate and mode). 1: one pass without dropout. Two
        restarts with 16 masks impute as well as four with 8 in half the time (validation
        digits and tables: ``benchmarks/results/sweep_restarts.json``).
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
    blend : {"auto", "none"}
        ``"auto"``: on tables (no ``image_shape``, at most 100 features) ``fit`` also trains
        a small ExtraTrees model per numeric feature (30 trees predicting it from the other
        features as the reverse loop filled them; a classifier per categorical column), in
        two passes (the second learns from the first's blended table, MissForest's
        iteration started from the loop), and
        blends each pass's prediction into the imputation with a weight per feature, after
        a Gaussian step towards the prior's conditional mean (weighted the same way; a
        categorical column's one-hot features take one weight, so its decoded category can
        come from the normal model) and a step towards a Gaussian copula's (the normal
        model of each numeric feature's normal scores, :mod:`revml.copula`), taken where it
        lowers the held cells' RMSE, then one towards chained regressions' imputation (each
        feature's ``BayesianRidge`` on the others, round robin, :mod:`revml.chained`) and
        one towards the mean of the five training rows most alike (:mod:`revml.neighbours`),
        each taken where it lowers the held cells' error by 1%. The weights are chosen on a tenth of
        the observed cells (and categorical values) that ``fit`` hides from the autoencoder and the
        trees alike and imputes itself (:mod:`revml.blending`); a feature where the trees
        do not help keeps the loop's value.
        ``fitted_blend_weights_``, ``fitted_copula_weights_``,
        ``fitted_chained_weights_`` and ``fitted_neighbour_weights_`` hold the weights.
        ``"none"``: the loop alone. Set at
        transform time, ``"none"`` also switches a fitted blend off.
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
        Rows per reverse batch. Default: bounded by a memory budget on the device, the
        rows of a call split into equal batches. Results do not depend on it beyond float
        rounding.
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
    state_ : revml.state.FittedState
        Everything ``fit`` learnt, in one object; the attributes below read it.
    autoencoder_ : torch.nn.Module or None
        The trained (frozen) autoencoder, in scaled space; ``None`` for one feature.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : numpy.ndarray
        Column names, when fitted on a DataFrame with string column names.
    encoder_ : revml.tabular.TabularEncoder or None
        The column encoder, when fitted on a DataFrame. The autoencoder then works on its
        encoded features, and the scaler below describes those.
    scaler_ : revml.scaling.FeatureScaler
        Per-feature scaling, ``scaled = (X - offset) / span`` (``offset``: each feature's
        minimum, or its mean under ``"center"`` scaling), and the training columns'
        ``means``, ``medians`` and range (``clip_lo``, ``clip_hi``) in scaled units.
    radius_ : float
        Radius of the spherical bottleneck penalty.
    prior_weight_ : float
        The prior's weight in use (``prior_weight`` with ``"auto"`` resolved at fit).
    prior_ : revml.prior.GaussianPrior or None
        The Gaussian prior fitted to the scaled training data (None without a prior).
    masked_ : bool
        Whether the autoencoder was trained with masking.
    history_ : list of float
        Autoencoder training loss per epoch (empty for a pre-trained autoencoder).
    n_updates_ : int
        Optimiser updates of autoencoder training.
    best_update_ : int
        The update whose weights were kept: early stopping's chosen length.
    validation_curve_ : list of (int, float)
        Early stopping's held-out scores by update (empty for a fixed-length fit).
    stop_reason_ : str
        Why training stopped (shown with ``verbose``).

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
        early_stopping: bool = True,
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
        clean_samples: int = 16,
        clamp: bool = True,
        n_restarts: int = 2,
        restart_noise: float = 0.1,
        combine: str = "mean",
        blend: str = "auto",
        fill: str = "auto",
        scaling: str = "auto",
        backend: str = "auto",
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        missing_values: Any = np.nan,
        precision: str = "auto",
        threads: int | str = "auto",
        max_categories: int | str | None = "auto",
    ) -> None:
        self.strategy = strategy
        self.autoencoder = autoencoder
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.activation = activation
        self.epochs = epochs
        self.train_batch_size = train_batch_size
        self.early_stopping = early_stopping
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
        self.blend = blend
        self.fill = fill
        self.scaling = scaling
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.missing_values = missing_values
        self.precision = precision
        self.threads = threads
        self.max_categories = max_categories

    # ------------------------------------------------------------------ fitted state
    # scikit-learn's fitted attributes, read from the one fitted state (``state_``).
    autoencoder_ = _fitted("autoencoder", "The trained (frozen) autoencoder, or None.")
    encoder_ = _fitted("encoder", "The column encoder of a DataFrame fit, or None.")
    scaler_ = _fitted("scaler", "The per-feature scaling (revml.scaling.FeatureScaler).")
    radius_ = _fitted("radius", "Radius of the spherical bottleneck term.")
    prior_weight_ = _fitted("prior_weight", "The prior's weight, 'auto' resolved.")
    prior_ = _fitted("prior", "The Gaussian prior (revml.prior.GaussianPrior), or None.")
    masked_ = _fitted("masked", "Whether the autoencoder was trained with masking.")
    device_ = _fitted("device", "Where the autoencoder lives.")

    @property
    def history_(self) -> list[float]:
        """Autoencoder training loss per epoch (empty for a pre-trained autoencoder)."""
        return self._state().training.loss

    @property
    def n_updates_(self) -> int:
        """Optimiser updates autoencoder training made (0 for a pre-trained one)."""
        return self._state().training.n_updates

    @property
    def validation_curve_(self) -> list[tuple[int, float]]:
        """Early stopping's scores: (updates so far, loss on the held-out rows' hidden
        entries); empty for a fixed-length fit."""
        return self._state().training.validation

    @property
    def best_update_(self) -> int:
        """The update whose weights the autoencoder kept (the best held-out score; the last
        update for a fixed-length fit): the training length early stopping chose."""
        return self._state().training.best_update

    @property
    def fitted_blend_weights_(self) -> np.ndarray:
        """(1 + passes, encoded features): row 0 each feature's share of the Gaussian
        prior's conditional mean, then in each pass of trees its share of the trees'
        prediction in its imputed value (``blend="auto"``); no rows where no blend was
        fitted."""
        state = self._state()
        if state.blend is None:
            return np.zeros((0, state.n_features))
        return state.blend.weights.copy()

    @property
    def fitted_copula_weights_(self) -> np.ndarray:
        """(encoded features,): each numeric feature's share of the Gaussian copula's
        conditional mean (:mod:`revml.copula`) in its imputed value, a step taken after
        the Gaussian one and before the trees (``blend="auto"``); all 0 where the blend
        took no copula step."""
        return self._step_weights("copula_weights")

    @property
    def fitted_chained_weights_(self) -> np.ndarray:
        """(encoded features,): each numeric feature's share of the chained regressions'
        imputation (:mod:`revml.chained`) in its imputed value, a step taken after the
        copula one and before the trees (``blend="auto"``); all 0 where the blend took no
        chained step."""
        return self._step_weights("chained_weights")

    @property
    def fitted_neighbour_weights_(self) -> np.ndarray:
        """(encoded features,): each numeric feature's share of its mean over the nearest
        training rows (:mod:`revml.neighbours`) in its imputed value, a step taken after the
        chained one and before the trees (``blend="auto"``); all 0 where the blend took no
        such step."""
        return self._step_weights("neighbour_weights")

    @property
    def stop_reason_(self) -> str:
        """Why autoencoder training stopped."""
        return self._state().training.stop_reason

    def _step_weights(self, name: str) -> np.ndarray:
        """A copy of the blend's step weights ``name`` (features,); 0 where no such step."""
        state = self._state()
        weights = None if state.blend is None else getattr(state.blend, name)
        return np.zeros(state.n_features) if weights is None else weights.copy()

    def _state(self) -> FittedState:
        check_is_fitted(self, "state_")
        return self.state_

    def _params(self) -> dict[str, Any]:
        """The parameters, validated against the parameter table (:mod:`revml.params`)."""
        params = self.get_params(deep=False)
        param_table.validate(params)
        return params

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
        return self._fit(X)

    def _fit(self, X: Any, hook: TrainingHook | None = None) -> ReverseImputer:
        """:meth:`fit`, with a hook into the training loop (:mod:`revml.distributed`)."""
        params = self._params()
        encoder = None
        if is_dataframe(X):
            if len(X) == 0:
                raise DataError("X has no rows")
            encoder = TabularEncoder(
                missing_values=self.missing_values,
                scale=self.scaling != "none",
                max_categories=self.max_categories,
            ).fit(X)
            if encoder.width == 0:
                raise DataError("X has no observed value: every entry is missing")
            x = as_tensor(encoder.encode(X))
        else:
            x = as_tensor(X, missing_values=self.missing_values)
        validate_data(self, X, reset=True, skip_check_array=True)
        seed = seeds(self.random_state)[0]
        held = None
        if hook is None and blend_wanted(params, x.shape[1]):
            # The blend's validation cells: the autoencoder never sees them (revml.blending).
            features = numeric_features(encoder, x.shape[1])
            held = validation_cells(x, features, seed, categorical_groups(encoder))
        state = fit_state(x, params, encoder, hook, hidden=held)
        if held is not None and state.autoencoder is not None:
            state = fit_blend(state, params, x, held, seed)
        self.state_ = state
        return self

    # ------------------------------------------------------------------ transform
    def reverse_config(self, seed: int = 0) -> ReverseConfig:
        """The :class:`~revml.reference.ReverseConfig` this imputer's loop runs with."""
        return reverse_config(self._state(), self._params(), seed)

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
        self._state()
        if not return_std:
            return self._details(X, runs=int(self.n_restarts)).X
        self._check_restarts("return_std=True")
        if int(self.n_restarts) < 2:
            raise InvalidParameterError(
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
            ``n_restarts`` (the restarts ``transform(X, return_std=True)`` summarises), or 5
            (the customary number of multiple imputations) when ``n_restarts`` is 1; pass
            5 or more for Rubin's rules with the default ``n_restarts=2``.

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
        self._state()
        self._check_restarts("multiple_imputations")
        if n_imputations is None:
            n = int(self.n_restarts)
            n_imputations = n if n >= 2 else DEFAULT_IMPUTATIONS
        m = n_imputations
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
            raise InvalidParameterError(f"n_imputations must be an integer >= 1, got {m!r}")
        return self._details(X, runs=int(m), keep=True).imputations

    def transform_details(self, X: Any, *, row_offset: int = 0) -> ImputationDetails:
        """:meth:`transform` plus the reverse loop's diagnostics.

        Row ``i`` of ``X`` draws the dropout randomness (and the restarts' noise) of sample
        ``row_offset + i``: a chunk or shard that starts at row ``r`` of a larger table,
        passed with ``row_offset=r``, is imputed as it would be in one call on the whole
        table. With ``n_restarts >= 2`` (reverse strategy) the details also hold ``std``,
        ``imputations`` and ``restart_loss`` (see :class:`ImputationDetails`).
        """
        restarts = self._restarts_run()
        return self._details(X, row_offset, runs=int(self.n_restarts), keep=restarts, std=restarts)

    def _restarts_run(self) -> bool:
        """Whether :meth:`transform` runs several restarts of the reverse loop."""
        return (
            int(self.n_restarts) >= 2
            and self.strategy == "reverse"
            and self._state().autoencoder is not None
        )

    def _check_restarts(self, what: str) -> None:
        """A clear error where ``what`` asks for restarts that cannot run."""
        if self.strategy == "direct":
            raise InvalidParameterError(
                f"{what} needs restarts of the reverse loop, but strategy='direct' is one "
                "deterministic pass through the autoencoder; use strategy='reverse'"
            )
        if self._state().autoencoder is None:
            raise InvalidParameterError(
                f"{what} needs restarts of the reverse loop, but this imputer was fitted on a "
                "single feature: it has no autoencoder and fills the column mean"
            )

    def _details(
        self, X: Any, row_offset: int = 0, *, runs: int, keep: bool = False, std: bool = False
    ) -> ImputationDetails:
        """Impute ``X`` with ``runs`` restarts; ``keep`` each restart's completed data and
        compute their ``std`` (which needs them)."""
        state, params = self._state(), self._params()
        seed = seeds(self.random_state)[1]

        def run(container: Any, x: torch.Tensor, with_std: bool) -> ImputationDetails:
            return impute(
                state,
                params,
                container,
                x,
                seed=seed,
                row_offset=row_offset,
                runs=runs,
                keep=keep,
                std=with_std,
            )

        if state.encoder is None:
            if is_dataframe(X):  # fitted on an array: a DataFrame of numbers is fine
                validate_data(self, X, reset=False, skip_check_array=True)
                arr = numeric_array(X.to_numpy(), "X", self.missing_values)
                return run(arr, as_tensor(arr), std).mapped(lambda a: as_frame_of(X, a))
            x = as_tensor(X, missing_values=self.missing_values)
            validate_data(self, X, reset=False, skip_check_array=True)
            return run(X, x, std)
        if not is_dataframe(X):  # fitted on a DataFrame: read the array's columns as its own
            if sp.issparse(X):
                numeric_array(X)  # the sparse-input error
            check_2d(np.asarray(X).shape, "X")
            validate_data(self, X, reset=False, skip_check_array=True)
            frame = pd.DataFrame(np.asarray(X), columns=state.encoder.columns_)
            details = self._details(frame, row_offset, runs=runs, keep=keep, std=std)
            return details.mapped(lambda f: None if f is None else f.to_numpy())
        validate_data(self, X, reset=False, skip_check_array=True)
        if len(X) == 0:
            raise DataError("X has no rows")
        encoded = state.encoder.encode(X)
        details = run(encoded, as_tensor(encoded), False)
        out = details.mapped(lambda a: None if a is None else state.encoder.decode(X, a))
        if std and out.imputations is not None:
            out.std = table_spread(state.encoder, X, out.X, out.imputations)
        return out

    # ------------------------------------------------------------------ diagnostics
    def direct_output(self, X: Any) -> Any:
        """The autoencoder's whole reconstruction of ``X`` (missing entries = ``fill``),
        in the original units, observed entries included (a diagnostic, not an imputation).

        An array for array input; a DataFrame (every cell decoded) for a DataFrame.
        """
        state = self._require_autoencoder()

        def whole(arr: Any, missing_values: Any) -> np.ndarray:
            x = as_tensor(arr, missing_values=missing_values)
            filled = torch.where(torch.isnan(x), state.fill(self.fill), state.scaler.scale(x))
            batch = auto_batch_size(state.autoencoder, x.shape[1], state.device, x.shape[0])
            out = reconstruct(state.autoencoder, filled, batch_size=batch, device=state.device)
            return state.scaler.unscale(out).numpy()

        return self._encoded_call(whole, X, every_cell=True)

    def initial_values(self, X: Any) -> Any:
        """The starting point of the reverse loop for ``X`` (original units)."""
        state = self._require_autoencoder()

        def start(arr: Any, missing_values: Any) -> np.ndarray:
            x = as_tensor(arr, missing_values=missing_values)
            miss = torch.isnan(x)
            dev = state.device
            with torch.no_grad():
                x0 = initial_values(
                    state.autoencoder,
                    state.scaler.scale(x).to(dev),
                    miss.to(dev),
                    self.init,
                    torch.from_numpy(state.scaler.means).to(dev),
                    torch.from_numpy(state.scaler.medians).to(dev),
                    state.fill(self.fill).to(dev),
                )
            means = torch.from_numpy(state.scaler.means)
            return write_missing(
                arr,
                state.scaler.unscale(x0.cpu()),
                miss,
                lambda: state.scaler.unscale(means),
                missing_values,
            )

        return self._encoded_call(start, X, every_cell=False)

    def _require_autoencoder(self) -> FittedState:
        state = self._state()
        if state.autoencoder is None:
            raise InvalidParameterError(
                "this imputer was fitted on a single feature: it has no autoencoder (its "
                "transform fills the column mean)"
            )
        return state

    def _encoded_call(self, fn, X: Any, every_cell: bool) -> Any:
        """Route ``fn`` (array, missing_values -> array) through the column encoder (or a
        DataFrame of numbers) where needed."""
        encoder = self._state().encoder
        if encoder is not None:
            cells = None
            if every_cell:
                n_rows = len(X) if is_dataframe(X) else np.asarray(X).shape[0]
                cells = np.ones((n_rows, len(encoder.columns_)), dtype=bool)
            return through_table(encoder, X, lambda enc: fn(enc, np.nan), cells)
        if is_dataframe(X):
            return as_frame_of(X, fn(X.to_numpy(), self.missing_values))
        return fn(X, self.missing_values)

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
        return persistence.save_imputer(
            path,
            self.get_params(deep=False),
            self._state(),
            self.n_features_in_,
            getattr(self, "feature_names_in_", None),
        )

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> ReverseImputer:
        """Read an imputer written by :meth:`save`; its imputations are bit-identical.

        ``device`` overrides the saved ``device`` parameter (e.g. ``"cpu"`` for a model
        saved on a GPU machine; results then agree only up to float rounding).
        """
        saved = persistence.load_imputer(path, device=device)
        imp = cls(**saved.params)
        imp.state_ = saved.state
        imp.n_features_in_ = saved.n_features_in
        if saved.feature_names_in is not None:
            imp.feature_names_in_ = saved.feature_names_in
        return imp


def table_spread(encoder: TabularEncoder, X: pd.DataFrame, combined: pd.DataFrame, imputations):
    """Per-cell spread of decoded restarts: see :meth:`ReverseImputer.transform`'s ``std``."""
    cells = encoder.missing(X)
    std = np.zeros(X.shape, dtype=np.float64)
    for j, spec in enumerate(encoder.specs_):
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
