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
loads with the value that reproduces what it was saved with (``_LEGACY_PARAMS``: one run
of the loop, a plain autoencoder), not with today's default.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .model import MLPAutoencoder
from .prior import GaussianPrior
from .tabular import TabularEncoder, is_nan_like

if TYPE_CHECKING:
    from .imputer import ReverseImputer

FORMAT = "revml.ReverseImputer"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

#: Fitted numpy attributes, stored with their dtype.
_ARRAYS = ("data_min_", "data_range_", "fill_values_", "medians_", "clip_min_", "clip_max_")


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
        raise TypeError(f"missing_values={value!r} cannot be saved: use a number or a string")
    return {"kind": "value", "value": value}


def _decode_marker(spec: dict) -> Any:
    return {"none": None, "nan": np.nan}.get(spec["kind"], spec.get("value"))


def _params_to_json(imp: ReverseImputer) -> dict:
    params = imp.get_params(deep=False)
    params.pop("autoencoder")
    rs = params["random_state"]
    if isinstance(rs, np.integer):
        rs = int(rs)
    if rs is not None and not isinstance(rs, int):
        raise ValueError(
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


#: Values of parameters added after the first file format, for files written before them:
#: the behaviour those files were saved with (a plain autoencoder, one run of the loop, one
#: clean pass), not today's defaults.
_LEGACY_PARAMS = {
    "masking": "none",
    "self_condition": 0.0,
    "image_shape": None,
    "dropout_mode": "auto",
    "clean_samples": 1,
    "n_restarts": 1,
    "restart_noise": 0.1,
    "combine": "mean",
    "prior_weight": 0.0,
}

#: Keys of the Gaussian prior's tensors in the weights file, beside the autoencoder's.
_PRIOR_KEYS = ("prior.mean", "prior.precision")


def _params_from_json(params: dict) -> dict:
    params = {**_LEGACY_PARAMS, **params}
    if params.get("image_shape") is not None:
        params["image_shape"] = tuple(params["image_shape"])
    if params.get("hidden") is not None:
        params["hidden"] = tuple(params["hidden"])
    params["missing_values"] = _decode_marker(params["missing_values"])
    return params


def save_imputer(imp: ReverseImputer, path: str | os.PathLike) -> Path:
    """Write a fitted imputer to the folder ``path``; see :meth:`ReverseImputer.save`."""
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    check_is_fitted(imp, "autoencoder_")
    module = imp.autoencoder_
    if module is not None and not isinstance(module, MLPAutoencoder):
        raise TypeError(
            f"only revml.model.MLPAutoencoder autoencoders can be saved; this imputer's is a "
            f"{type(module).__name__}. Save its state_dict yourself (safetensors.torch."
            "save_file) and pass the rebuilt module as ReverseImputer(autoencoder=...)"
        )
    fitted: dict[str, Any] = {
        name: {"dtype": str(getattr(imp, name).dtype), "values": getattr(imp, name).tolist()}
        for name in _ARRAYS
    }
    fitted["radius_"] = float(imp.radius_)
    fitted["masked_"] = bool(getattr(imp, "masked_", False))
    fitted["prior_weight_"] = float(getattr(imp, "prior_weight_", 0.0))
    fitted["history_"] = [float(v) if np.isfinite(v) else None for v in imp.history_]
    fitted["n_features_in_"] = int(imp.n_features_in_)
    if hasattr(imp, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(c) for c in imp.feature_names_in_]
    fitted["device_"] = str(imp.device_)

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {}
    if module is not None:
        weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    prior = getattr(imp, "prior_", None)
    if prior is not None:
        weights[_PRIOR_KEYS[0]] = prior.mean.detach().cpu().contiguous()
        weights[_PRIOR_KEYS[1]] = prior.precision.detach().cpu().contiguous()
    from safetensors.torch import save as save_bytes

    blob = save_bytes(weights, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "revml_version": __version__,
        "params": _params_to_json(imp),
        "pretrained_autoencoder": imp.autoencoder is not None,
        "architecture": None if module is None else module.config(),
        "fitted": fitted,
        "tabular": None if imp.encoder_ is None else imp.encoder_.to_dict(),
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


def _fail(path: Path, why: str) -> ValueError:
    return ValueError(f"cannot load the imputer saved in {path}: {why}")


def load_imputer(
    path: str | os.PathLike, device: str | torch.device | None = None
) -> ReverseImputer:
    """Read an imputer written by :func:`save_imputer`; see :meth:`ReverseImputer.load`."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    from .imputer import ReverseImputer, _resolve_device

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no saved imputer at {folder}: expected a folder with {CONFIG_FILE} and "
            f"{MODEL_FILE} (written by ReverseImputer.save)"
        )
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: the saved imputer is incomplete")
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
        if device is not None:
            params["device"] = str(device)
        imp = ReverseImputer(**params)
        try:
            dev = _resolve_device(imp.device)
        except ValueError as err:
            raise _fail(folder, f"{err}; pass device='cpu' to load it there") from None
        fitted = config["fitted"]
        for name in _ARRAYS:
            entry = fitted[name]
            if entry["dtype"] not in ("float32", "float64"):
                raise _fail(folder, f"{name} has dtype {entry['dtype']!r}, not a float")
            setattr(imp, name, np.asarray(entry["values"], dtype=np.dtype(entry["dtype"])))
        imp.radius_ = float(fitted["radius_"])
        imp.masked_ = bool(fitted.get("masked_", False))
        imp.prior_weight_ = float(fitted.get("prior_weight_", 0.0))
        imp.history_ = [np.nan if v is None else float(v) for v in fitted["history_"]]
        imp.n_features_in_ = int(fitted["n_features_in_"])
        if "feature_names_in_" in fitted:
            imp.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        imp.device_ = dev
        tabular = config["tabular"]
        imp.encoder_ = None if tabular is None else TabularEncoder.from_dict(tabular)
        architecture = config["architecture"]
    except (KeyError, TypeError) as err:
        raise _fail(folder, f"{CONFIG_FILE} lacks or garbles an entry: {err!r}") from None

    imp.prior_ = None
    if all(key in state for key in _PRIOR_KEYS):
        mean, precision = (state.pop(key).to(torch.float64) for key in _PRIOR_KEYS)
        d = mean.shape[0] if mean.dim() == 1 else -1
        if d < 0 or tuple(precision.shape) != (d, d):
            raise _fail(folder, "the saved Gaussian prior has inconsistent shapes")
        imp.prior_ = GaussianPrior(mean, precision)
    if imp.prior_weight_ > 0 and imp.prior_ is None:
        raise _fail(folder, f"prior_weight_={imp.prior_weight_} but {MODEL_FILE} holds no prior")
    if architecture is None:
        imp.autoencoder_ = None
    else:
        try:
            module = MLPAutoencoder(**architecture)
        except (TypeError, ValueError) as err:
            raise _fail(folder, f"the saved architecture is not valid: {err}") from None
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise _fail(folder, f"weights do not fit the saved architecture: {err}") from None
        imp.autoencoder_ = module.to(dev).eval().requires_grad_(False)
        if config.get("pretrained_autoencoder"):
            # The user's module was used as given; a refit of the loaded imputer uses it too.
            imp.autoencoder = copy.deepcopy(module).cpu().requires_grad_(True)
    width = imp.encoder_.width if imp.encoder_ is not None else imp.n_features_in_
    if any(len(getattr(imp, name)) != width for name in _ARRAYS):
        raise _fail(folder, "fitted arrays do not match the number of features")
    if imp.prior_ is not None and imp.prior_.mean.shape[0] != width:
        raise _fail(folder, "the saved Gaussian prior does not match the number of features")
    return imp
