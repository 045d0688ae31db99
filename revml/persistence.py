"""Saving and loading a fitted :class:`~revml.ReverseImputer`, without pickle.

A saved imputer is a folder with two files:

``model.safetensors``
    The autoencoder's ``state_dict`` (safetensors: tensors only, no code).
``config.json``
    The estimator's parameters, its fitted attributes (as lists, with their dtypes), the
    autoencoder's architecture (:meth:`revml.model.MLPAutoencoder.config`), the column
    encoder of a DataFrame fit, the revml version, a format name and version, the
    SHA-256 of ``model.safetensors`` and of the rest of ``config.json`` itself.

Loading checks both checksums, so a truncated, corrupted or edited file is a clear error
instead of a model that silently imputes something else. Float arrays are written with
Python's shortest round-trip repr, so they read back bit for bit, and a loaded imputer's
imputations are bit-identical to the saved one's on the same device. Parameters are saved
by name (``get_params``): a file written before a parameter existed (e.g. ``n_restarts``)
loads with the value that reproduces what it was saved with (the parameter table's
``legacy`` values, :func:`revml.params.legacy_defaults`: one run of the loop, a plain
autoencoder), not with today's default.

This module reads and writes a :class:`~revml.state.FittedState` and a parameter dict; it
never imports the estimator (:meth:`revml.ReverseImputer.save` and ``load`` call it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import params as param_table
from .blending import categorical_groups, numeric_features
from .errors import FileError, RevmlError
from .model import MLPAutoencoder
from .prior import GaussianPrior
from .scaling import FeatureScaler
from .state import (
    BLEND_KEYS,
    CHAINED_KEY,
    COPULA_KEY,
    NEIGHBOURS_KEY,
    PRIOR_KEYS,
    FittedState,
    TrainingRecord,
    resolve_device,
)
from .tabular import TabularEncoder, is_nan_like
from .trees import TreeBlend

FORMAT = "revml.ReverseImputer"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

#: The scaler's arrays (:class:`~revml.scaling.FeatureScaler` fields) under their names in
#: the file, stored with their dtype.
_ARRAYS = {
    "offset": "data_min_",
    "span": "data_range_",
    "means": "fill_values_",
    "medians": "medians_",
    "clip_lo": "clip_min_",
    "clip_hi": "clip_max_",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(config: dict) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _encode_marker(value: Any) -> dict:
    if value is None:
        return {"kind": "none"}
    if is_nan_like(value):
        return {"kind": "nan"}
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, str | int | float):
        raise SaveError(f"missing_values={value!r} cannot be saved: use a number or a string")
    return {"kind": "value", "value": value}


def _decode_marker(spec: dict) -> Any:
    return {"none": None, "nan": np.nan}.get(spec["kind"], spec.get("value"))


class SaveError(RevmlError, ValueError, TypeError):
    """A fitted imputer that cannot be written as it is (the message says what to change)."""


def _params_to_json(params: Mapping[str, Any]) -> dict:
    params = dict(params)
    params.pop("autoencoder")
    rs = params["random_state"]
    if isinstance(rs, np.integer):
        rs = int(rs)
    if rs is not None and not isinstance(rs, int):
        raise SaveError(
            "random_state is a RandomState instance, which cannot be saved: set an int seed "
            "first, e.g. imp.set_params(random_state=0) (it only seeds transform after fit)"
        )
    params["random_state"] = rs
    params["device"] = None if params["device"] is None else str(params["device"])
    params["hidden"] = None if params["hidden"] is None else [int(h) for h in params["hidden"]]
    shape = params["image_shape"]
    params["image_shape"] = None if shape is None else [int(v) for v in shape]
    params["missing_values"] = _encode_marker(params["missing_values"])
    for key, value in params.items():
        if isinstance(value, np.generic):
            params[key] = value.item()
    return params


def _params_from_json(params: dict) -> dict:
    params = {**param_table.legacy_defaults(), **params}
    if params.get("image_shape") is not None:
        params["image_shape"] = tuple(params["image_shape"])
    if params.get("hidden") is not None:
        params["hidden"] = tuple(params["hidden"])
    params["missing_values"] = _decode_marker(params["missing_values"])
    return params


def save_imputer(
    path: str | os.PathLike,
    params: Mapping[str, Any],
    state: FittedState,
    n_features_in: int,
    feature_names_in: Any = None,
) -> Path:
    """Write a fitted state and its estimator's parameters to the folder ``path``; see
    :meth:`revml.ReverseImputer.save`."""
    from . import __version__

    module = state.autoencoder
    if module is not None and not isinstance(module, MLPAutoencoder):
        raise SaveError(
            f"only revml.model.MLPAutoencoder autoencoders can be saved; this imputer's is a "
            f"{type(module).__name__}. Save its state_dict yourself (safetensors.torch."
            "save_file) and pass the rebuilt module as ReverseImputer(autoencoder=...)"
        )
    fitted: dict[str, Any] = {}
    for field_name, key in _ARRAYS.items():
        array = getattr(state.scaler, field_name)
        fitted[key] = {"dtype": str(array.dtype), "values": array.tolist()}
    fitted["radius_"] = float(state.radius)
    fitted["masked_"] = bool(state.masked)
    fitted["prior_weight_"] = float(state.prior_weight)
    fitted["history_"] = [float(v) if np.isfinite(v) else None for v in state.training.loss]
    fitted["n_updates_"] = int(state.training.n_updates)
    fitted["validation_curve_"] = [[int(u), float(v)] for u, v in state.training.validation]
    fitted["best_update_"] = int(state.training.best_update)
    fitted["stop_reason_"] = str(state.training.stop_reason)
    fitted["n_features_in_"] = int(n_features_in)
    if feature_names_in is not None:
        fitted["feature_names_in_"] = [str(c) for c in feature_names_in]
    fitted["device_"] = str(state.device)

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in state.tensors().items()}
    from safetensors.torch import save as save_bytes

    blob = save_bytes(weights, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "revml_version": __version__,
        "params": _params_to_json(params),
        "pretrained_autoencoder": bool(state.pretrained),
        "architecture": None if module is None else module.config(),
        "fitted": fitted,
        "tabular": None if state.encoder is None else state.encoder.to_dict(),
        "files": {MODEL_FILE: {"sha256": _sha256(blob), "bytes": len(blob)}},
    }
    config["config_sha256"] = _sha256(_canonical(config))
    # Write to temporary names, then rename: an interrupted save never leaves a pair of
    # files that look valid but do not belong together.
    for name, data in ((MODEL_FILE, blob), (CONFIG_FILE, _dumps(config))):
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
    return folder


def _dumps(config: dict) -> bytes:
    return (json.dumps(config, indent=1, allow_nan=False) + "\n").encode()


class LoadError(RevmlError, ValueError):
    """A saved imputer that cannot be read back (truncated, edited, or another format)."""


class MissingModelError(FileError, FileNotFoundError):
    """No saved imputer (or only part of one) where one was expected."""


def _fail(path: Path, why: str) -> LoadError:
    return LoadError(f"cannot load the imputer saved in {path}: {why}")


@dataclass
class Saved:
    """What :func:`load_imputer` reads: the estimator's parameters, its fitted state and
    the input description scikit-learn's attributes hold."""

    params: dict
    state: FittedState
    n_features_in: int
    feature_names_in: np.ndarray | None


def load_imputer(path: str | os.PathLike, device: str | torch.device | None = None) -> Saved:
    """Read what :func:`save_imputer` wrote; see :meth:`revml.ReverseImputer.load`.

    ``device`` overrides the saved ``device`` parameter.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    folder = Path(path)
    if not folder.is_dir():
        raise MissingModelError(
            f"no saved imputer at {folder}: expected a folder with {CONFIG_FILE} and "
            f"{MODEL_FILE} (written by ReverseImputer.save)"
        )
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (folder / name).is_file():
            raise MissingModelError(f"{folder / name} is missing: the saved imputer is incomplete")
    raw = (folder / CONFIG_FILE).read_bytes()
    try:
        config = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(folder, f"{CONFIG_FILE} is not valid JSON (truncated?): {err}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _fail(folder, f"{CONFIG_FILE} is not a saved revml ReverseImputer")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _fail(
            folder,
            f"format version {version!r} is newer than this revml reads ({FORMAT_VERSION}); "
            "upgrade revml",
        )
    expected = config.pop("config_sha256", None)
    if expected != _sha256(_canonical(config)):
        raise _fail(folder, f"{CONFIG_FILE} was modified after it was saved (checksum mismatch)")
    blob = (folder / MODEL_FILE).read_bytes()
    record = config["files"][MODEL_FILE]
    if len(blob) != record["bytes"] or _sha256(blob) != record["sha256"]:
        raise _fail(
            folder,
            f"{MODEL_FILE} does not match the checksum in {CONFIG_FILE} "
            f"({len(blob)} bytes, expected {record['bytes']}): truncated, corrupted or replaced",
        )
    try:
        state = load_bytes(blob)
    except SafetensorError as err:
        raise _fail(folder, f"{MODEL_FILE} is not a valid safetensors file: {err}") from None

    try:
        params = _params_from_json(config["params"])
        unknown = sorted(set(params) - set(param_table.by_name()))
        if unknown:
            raise TypeError(f"unknown parameters {unknown}")
        if device is not None:
            params["device"] = str(device)
        param_table.validate(params)
        try:
            dev = resolve_device(params["device"])
        except RevmlError as err:
            raise _fail(folder, f"{err}; pass device='cpu' to load it there") from None
        fitted = config["fitted"]
        arrays = {}
        for field_name, key in _ARRAYS.items():
            entry = fitted[key]
            if entry["dtype"] not in ("float32", "float64"):
                raise _fail(folder, f"{key} has dtype {entry['dtype']!r}, not a float")
            arrays[field_name] = np.asarray(entry["values"], dtype=np.dtype(entry["dtype"]))
        scaler = FeatureScaler(**arrays)
        training = TrainingRecord(
            [np.nan if v is None else float(v) for v in fitted["history_"]],
            int(fitted.get("n_updates_", 0)),
            [(int(u), float(v)) for u, v in fitted.get("validation_curve_", [])],
            int(fitted.get("best_update_", 0)),
            str(fitted.get("stop_reason_", "")),
        )
        radius = float(fitted["radius_"])
        masked = bool(fitted.get("masked_", False))
        prior_weight = float(fitted.get("prior_weight_", 0.0))
        n_features_in = int(fitted["n_features_in_"])
        names = fitted.get("feature_names_in_")
        names = None if names is None else np.asarray(names, dtype=object)
        tabular = config["tabular"]
        encoder = None if tabular is None else TabularEncoder.from_dict(tabular)
        architecture = config["architecture"]
        pretrained = bool(config.get("pretrained_autoencoder"))
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, LoadError):
            raise
        raise _fail(folder, f"{CONFIG_FILE} lacks or garbles an entry: {err!r}") from None

    prior = None
    if all(key in state for key in PRIOR_KEYS):
        mean, precision = (state.pop(key).to(torch.float64) for key in PRIOR_KEYS)
        d = mean.shape[0] if mean.dim() == 1 else -1
        if d < 0 or tuple(precision.shape) != (d, d):
            raise _fail(folder, "the saved Gaussian prior has inconsistent shapes")
        prior = GaussianPrior(mean, precision)
    if prior_weight > 0 and prior is None:
        raise _fail(folder, f"prior_weight_={prior_weight} but {MODEL_FILE} holds no prior")
    blend = None
    if all(key in state for key in BLEND_KEYS):
        weights, data, seed, filled = (state.pop(key) for key in BLEND_KEYS)
        if (
            weights.dim() != 2
            or data.dim() != 2
            or data.shape[1] != weights.shape[1]
            or filled.shape != data.shape
        ):
            raise _fail(folder, "the saved tree blend has inconsistent shapes")
        if bool(weights[0].any()) and prior is None:
            raise _fail(folder, "the saved blend weighs a Gaussian prior the file lacks")
        # The trees are trained again on the rows they learnt from: the same trees.
        groups = categorical_groups(encoder)
        copula = state.pop(COPULA_KEY, None)
        if copula is not None and tuple(copula.shape) != (data.shape[1],):
            raise _fail(folder, "the saved copula step does not match the blend's features")
        chained = state.pop(CHAINED_KEY, None)
        if chained is not None and tuple(chained.shape) != (data.shape[1],):
            raise _fail(folder, "the saved chained step does not match the blend's features")
        neighbours = state.pop(NEIGHBOURS_KEY, None)
        if neighbours is not None and tuple(neighbours.shape) != (data.shape[1],):
            raise _fail(folder, "the saved neighbours' step does not match the blend's features")
        blend = TreeBlend.rebuilt(
            weights.numpy(),
            data.numpy(),
            filled.numpy(),
            int(seed[0]),
            prior,
            groups,
            None if copula is None else copula.numpy(),
            numeric_features(encoder, data.shape[1]),
            None if chained is None else chained.numpy(),
            None if neighbours is None else neighbours.numpy(),
        )
    elif any(key in state for key in (*BLEND_KEYS, COPULA_KEY, CHAINED_KEY, NEIGHBOURS_KEY)):
        raise _fail(folder, "the saved tree blend is incomplete")
    module = None
    if architecture is not None:
        module = _rebuilt(folder, architecture, state).to(dev).eval().requires_grad_(False)
        if pretrained:
            # The user's module was used as given; a refit of the loaded imputer uses it too.
            params["autoencoder"] = copy.deepcopy(module).cpu().requires_grad_(True)
    width = encoder.width if encoder is not None else n_features_in
    if any(len(a) != width for a in arrays.values()):
        raise _fail(folder, "fitted arrays do not match the number of features")
    if prior is not None and prior.mean.shape[0] != width:
        raise _fail(folder, "the saved Gaussian prior does not match the number of features")
    if blend is not None and blend.weights.shape[1] != width:
        raise _fail(folder, "the saved tree blend does not match the number of features")
    fitted_state = FittedState(
        scaler,
        module,
        masked,
        radius,
        prior_weight,
        prior,
        encoder,
        training,
        dev,
        pretrained,
        blend,
    )
    return Saved(params, fitted_state, n_features_in, names)


def _rebuilt(folder: Path, architecture: dict, state: dict) -> MLPAutoencoder:
    try:
        module = MLPAutoencoder(**architecture)
    except (TypeError, ValueError) as err:
        raise _fail(folder, f"the saved architecture is not valid: {err}") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise _fail(folder, f"weights do not fit the saved architecture: {err}") from None
    return module
