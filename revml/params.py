"""The parameter table of :class:`revml.ReverseImputer`: one entry per parameter.

Each :class:`Param` says what values the parameter takes (its constraints, checked by
:func:`validate`), its default, the value that reproduces files saved before it existed
(``legacy``, read by :mod:`revml.persistence`), the :class:`~revml.reference.ReverseConfig`
field it sets (``config``) and, for the command line, its flag and help. The pattern is
scikit-learn's ``_parameter_constraints`` (``Interval``, ``StrOptions``), written here
because scikit-learn's helpers are private.

A new reverse-loop hyperparameter is one entry here, one keyword of
``ReverseImputer.__init__`` (a test checks that the two agree) and one field of
``ReverseConfig``, plus the maths that uses it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidParameterError
from .precision import PRECISIONS

_UNSET = object()


class Constraint:
    """One admissible kind of value; a parameter takes any value one of its constraints
    admits."""

    def admits(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (strings, usually)."""

    values: tuple

    def admits(self, value: Any) -> bool:
        return isinstance(value, str | bool | type(None)) and value in self.values

    def describe(self) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return f"one of {self.values}"


@dataclass(frozen=True)
class Interval(Constraint):
    """A real (or, with ``integer``, an integral) number between ``low`` and ``high``.

    ``None`` bounds are open ends; ``closed`` says which finite bounds belong to it.
    Booleans are never numbers here, and NaN and infinities are never admitted.
    """

    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"
    integer: bool = False

    def admits(self, value: Any) -> bool:
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return False
        if not math.isfinite(float(value)):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{kind} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{kind} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.high is not None:
            return f"{kind} {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        return kind


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of one of ``types`` (named by ``name`` in messages)."""

    types: tuple
    name: str

    def admits(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class IntTuple(Constraint):
    """A tuple or list of positive integers, of length ``length`` if given."""

    length: int | None = None

    def admits(self, value: Any) -> bool:
        if not isinstance(value, tuple | list) or not value:
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return all(Interval(1, integer=True).admits(v) for v in value)

    def describe(self) -> str:
        n = f"{self.length} " if self.length else ""
        return f"a tuple of {n}positive integers"


class Anything(Constraint):
    """Any value (checked where it is used, e.g. ``missing_values``)."""

    def admits(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return "any value"


NONE = Options((None,))
BOOL = InstanceOf((bool, np.bool_), "a bool")


def _torch_device_type() -> tuple:
    import torch

    return (str, torch.device)


def _module_type() -> tuple:
    from torch import nn

    return (nn.Module,)


class _Lazy(Constraint):
    """:class:`InstanceOf` whose types are imported on first use (torch is heavy)."""

    def __init__(self, types, name: str) -> None:
        self._types, self.name = types, name

    def admits(self, value: Any) -> bool:
        return isinstance(value, self._types())

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Param:
    """One parameter of :class:`revml.ReverseImputer`."""

    name: str
    default: Any
    constraints: tuple[Constraint, ...]
    #: Value for a file saved before this parameter existed (default: ``default``).
    legacy: Any = _UNSET
    #: The :class:`~revml.reference.ReverseConfig` field this parameter sets, if any.
    config: str | None = None
    #: Command-line flag (``revml fit/impute/evaluate``) and its help, if it has one.
    flag: str | None = None
    help: str = ""
    #: How the command line reads the flag's text (default: the text itself).
    parse: Callable[[str], Any] | None = None

    @property
    def choices(self) -> tuple | None:
        """The allowed values when the parameter takes only fixed options (CLI choices)."""
        if all(isinstance(c, Options) for c in self.constraints):
            return tuple(v for c in self.constraints for v in c.values if v is not None)
        return None

    @property
    def legacy_value(self) -> Any:
        return self.default if self.legacy is _UNSET else self.legacy

    def check(self, value: Any) -> None:
        if any(c.admits(value) for c in self.constraints):
            return
        allowed = " or ".join(c.describe() for c in self.constraints)
        if all(isinstance(c, Options) for c in self.constraints):
            values = tuple(v for c in self.constraints for v in c.values)
            raise InvalidParameterError(
                f"unknown {self.name} {value!r}; {self.name} must be one of {values}"
            )
        raise InvalidParameterError(f"{self.name} must be {allowed}, got {value!r}")


def int_list(text: str) -> tuple[int, ...]:
    """``"64,32"`` -> ``(64, 32)``."""
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"widths like 64,32 are expected, got {text!r}") from None


def count_or_none(text: str) -> int | str | None:
    """A count, ``"none"`` (None) or ``"auto"``."""
    word = text.strip().lower()
    if word in ("none", "auto"):
        return None if word == "none" else "auto"
    return int(text)


def auto_or_count(text: str) -> int | str:
    """A count or ``"auto"``."""
    return "auto" if text.strip().lower() == "auto" else int(text)


def _p(name: str, default: Any, *constraints: Constraint, **kw: Any) -> Param:
    return Param(name, default, constraints, **kw)


_REAL_NONNEG = Interval(0)
_REAL_POS = Interval(0, closed="neither")
_INT_POS = Interval(1, integer=True)
_UNIT_OPEN = Interval(0, 1, closed="left")


def _choices() -> dict[str, tuple]:
    # Imported here, not at the top: these modules import torch, and the table is also
    # read by the command line before any heavy import.
    from .backends import BACKENDS
    from .model import ACTIVATIONS
    from .reverse import INITS
    from .training import MASKINGS

    return {"backend": BACKENDS, "activation": ACTIVATIONS, "init": INITS, "masking": MASKINGS}


STRATEGIES = ("reverse", "direct")
SCALINGS = ("auto", "minmax", "center", "none")
FILLS = ("auto", "mean", "zeros")
DROPOUT_MODES = ("auto", "hide", "scale")
COMBINES = ("mean", "lowest_loss")
#: "auto": tables get the tree blend of :mod:`revml.blending` where it helps; "none": never.
BLENDS = ("auto", "none")


def _table() -> tuple[Param, ...]:
    c = _choices()
    return (
        _p(
            "strategy",
            "reverse",
            Options(STRATEGIES),
            flag="--strategy",
            help="reverse training, or one direct autoencoder pass (default: %(default)s)",
        ),
        _p("autoencoder", None, NONE, _Lazy(_module_type, "a torch.nn.Module")),
        _p(
            "hidden",
            None,
            NONE,
            IntTuple(),
            flag="--hidden",
            help="encoder hidden widths, e.g. 64,32 (default: sized from the data)",
            parse=int_list,
        ),
        _p(
            "bottleneck",
            None,
            NONE,
            _INT_POS,
            flag="--bottleneck",
            help="code width (default: sized from the data)",
            parse=int,
        ),
        _p("activation", "relu", Options(c["activation"])),
        _p(
            "epochs",
            None,
            NONE,
            Interval(0, integer=True),
            flag="--epochs",
            help="autoencoder training epochs (default: sized from the data)",
            parse=int,
        ),
        _p("train_batch_size", None, NONE, _INT_POS),
        _p("early_stopping", True, BOOL, legacy=False),
        _p("learning_rate", 1e-3, _REAL_POS),
        _p("mask_fraction", 0.0, _UNIT_OPEN),
        _p("masking", "mixed", Options(c["masking"]), legacy="none"),
        _p("self_condition", 0.5, Interval(0, 1), legacy=0.0),
        _p("image_shape", None, NONE, IntTuple(2), legacy=None),
        _p(
            "n_steps",
            75,
            Interval(0, integer=True),
            config="n_steps",
            flag="--n-steps",
            help="reverse-training steps per row (default: %(default)s)",
            parse=int,
        ),
        _p("reverse_lr", 0.01, _REAL_POS, config="lr"),
        _p("init", "direct", Options(c["init"])),
        _p("dropout", 0.45, _UNIT_OPEN, config="dropout"),
        _p("dropout_mode", "auto", Options(DROPOUT_MODES), legacy="auto"),
        _p("missing_weight", 0.3, _REAL_NONNEG, config="missing_weight"),
        _p("sphere_weight", 0.0, _REAL_NONNEG, config="sphere_weight"),
        _p("prior_weight", "auto", Options(("auto",)), _REAL_NONNEG, legacy=0.0),
        _p("clean_pass", True, BOOL),
        _p("clean_samples", 16, _INT_POS, legacy=1, config="clean_samples"),
        _p("clamp", True, BOOL),
        _p("n_restarts", 2, _INT_POS, legacy=1),
        _p("restart_noise", 0.1, _REAL_NONNEG, legacy=0.1, config="restart_noise"),
        _p("combine", "mean", Options(COMBINES), legacy="mean"),
        _p("blend", "auto", Options(BLENDS), legacy="none"),
        _p("fill", "auto", Options(FILLS)),
        _p("scaling", "auto", Options(SCALINGS)),
        _p(
            "backend",
            "auto",
            Options(c["backend"]),
            flag="--backend",
            help="execution path of the reverse loop (default: %(default)s)",
        ),
        _p("batch_size", None, NONE, _INT_POS),
        _p("device", None, NONE, _Lazy(_torch_device_type, "a device name or torch.device")),
        _p(
            "random_state",
            None,
            NONE,
            Interval(0, integer=True),
            InstanceOf((np.random.RandomState,), "a numpy RandomState"),
        ),
        _p("verbose", False, BOOL, Interval(0, integer=True)),
        _p("missing_values", np.nan, Anything()),
        _p(
            "precision",
            "auto",
            Options(PRECISIONS),
            legacy="float32",
            flag="--precision",
            help="the autoencoder's arithmetic in training and imputation: float32, bfloat16 "
            "(float32 accumulation; the imputed values stay float32) or auto (bfloat16 for "
            "the imputation of large networks on a CPU with fast bfloat16, float32 "
            "otherwise; default: %(default)s; see the README's 'Mixed precision')",
        ),
        _p(
            "threads",
            "auto",
            Options(("auto",)),
            _INT_POS,
            flag="--threads",
            help="CPU threads for torch: a count, or auto (one thread for small "
            "problems, all cores for large ones; default: %(default)s)",
            parse=auto_or_count,
        ),
        _p(
            "max_categories",
            "auto",
            Options(("auto",)),
            NONE,
            _INT_POS,
            legacy="auto",
            flag="--max-categories",
            help="largest one-hot expansion of a categorical column: a count, 'none' for no "
            "limit, or auto (50 categories, and at most 10 times the other features; "
            "default: %(default)s). A wider column is refused with an explanation",
            parse=count_or_none,
        ),
    )


_CACHE: dict[str, tuple[Param, ...]] = {}


def parameters() -> tuple[Param, ...]:
    """The table, in ``ReverseImputer.__init__``'s order."""
    if "table" not in _CACHE:
        _CACHE["table"] = _table()
    return _CACHE["table"]


def by_name() -> dict[str, Param]:
    return {p.name: p for p in parameters()}


def defaults() -> dict[str, Any]:
    """Every parameter's default."""
    return {p.name: p.default for p in parameters()}


def legacy_defaults() -> dict[str, Any]:
    """The values a file saved before a parameter existed was written with."""
    return {p.name: p.legacy_value for p in parameters() if p.legacy is not _UNSET}


def validate(params: Mapping[str, Any]) -> None:
    """Raise :class:`~revml.errors.InvalidParameterError` naming the first parameter
    outside its constraints, or a combination that cannot work together."""
    table = by_name()
    for name, value in params.items():
        if name in table:
            table[name].check(value)
    mask_fraction = params.get("mask_fraction", 0.0)
    if params.get("masking", "none") != "none" and mask_fraction > 0:
        raise InvalidParameterError(
            f"mask_fraction={mask_fraction} is the rate of masking='none' training; "
            f"masking={params['masking']!r} draws its own rates: set one or the other"
        )


def config_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~revml.reference.ReverseConfig` fields the parameters set, by field."""
    return {p.config: params[p.name] for p in parameters() if p.config is not None}


def cli_params() -> list[Param]:
    """The parameters that have a command-line flag."""
    return [p for p in parameters() if p.flag is not None]
