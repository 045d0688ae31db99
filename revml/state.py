"""Everything ``fit`` learns, in one object: :class:`FittedState`.

``transform`` reads it, :mod:`revml.persistence` writes and reads it, and
:func:`FittedState.fingerprint` hashes all of it, so an attribute added here is saved,
loaded and fingerprinted by construction (``fields`` below), never by a list kept by hand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .prior import GaussianPrior
from .scaling import FeatureScaler
from .tabular import TabularEncoder
from .trees import TreeBlend


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device``, or CUDA when available and the CPU otherwise (``None`` / ``"auto"``)."""
    from .errors import BackendUnavailableError

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(f"device={device!r} was requested but CUDA is not available")
    return dev


@dataclass
class TrainingRecord:
    """How the autoencoder was trained: empty for a pre-trained one or a single feature."""

    #: mean training loss per epoch (masked MSE over observed entries)
    loss: list[float] = field(default_factory=list)
    #: optimiser updates made
    n_updates: int = 0
    #: early stopping: (updates so far, held-out validation loss) at each score
    validation: list = field(default_factory=list)
    #: the update whose weights were kept (the best validation score)
    best_update: int = 0
    #: why training stopped ("validation loss stopped improving ...", "epoch limit", ...)
    stop_reason: str = ""


@dataclass
class FittedState:
    """What :meth:`revml.ReverseImputer.fit` learnt.

    ``autoencoder`` is ``None`` for a single feature (nothing to impute it from); then the
    transform fills the column mean. ``encoder`` is the column encoder of a DataFrame fit.
    """

    scaler: FeatureScaler
    autoencoder: nn.Module | None
    #: the autoencoder was trained with masking (hidden entries are 0 at its input)
    masked: bool
    #: radius of the spherical bottleneck term: median code norm of the training rows
    radius: float
    #: the prior's weight with ``prior_weight="auto"`` resolved
    prior_weight: float
    prior: GaussianPrior | None
    encoder: TabularEncoder | None
    training: TrainingRecord
    device: torch.device
    #: the autoencoder was given by the user (``autoencoder=``), not trained here
    pretrained: bool = False
    #: per-feature trees blended into the loop's imputation (tables; :mod:`revml.blending`)
    blend: TreeBlend | None = None
    _device_prior: Any = field(default=None, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        """Width of the scaled space (encoded features for a DataFrame)."""
        return self.scaler.n_features

    def fill(self, direct_fill: str) -> torch.Tensor:
        """What missing entries hold for a direct pass (scaled units): ``"zeros"``, the
        column ``"mean"``s, or ``"auto"``: 0 for a masked autoencoder (what it saw there)."""
        means = torch.from_numpy(self.scaler.means)
        zeros = direct_fill == "zeros" or (direct_fill == "auto" and self.masked)
        return torch.zeros_like(means) if zeros else means

    def prior_on_device(self) -> GaussianPrior | None:
        """The prior as float32 on the autoencoder's device (moved once, then reused)."""
        if self.prior is None:
            return None
        cached = self._device_prior
        if cached is None or cached[0] is not self.prior or cached[1] != self.device:
            cached = (self.prior, self.device, self.prior.to(self.device, torch.float32))
            self._device_prior = cached
        return cached[2]

    def fingerprint(self) -> str:
        """SHA-256 of everything that decides this state's imputations."""
        h = hashlib.sha256()
        for name, array in sorted(self.scaler.arrays().items()):
            h.update(name.encode())
            h.update(str(array.dtype).encode())
            h.update(np.ascontiguousarray(array).tobytes())
        scalars = {
            "masked": self.masked,
            "radius": repr(float(self.radius)),
            "prior_weight": repr(float(self.prior_weight)),
            "pretrained": self.pretrained,
        }
        h.update(json.dumps(scalars, sort_keys=True).encode())
        if self.encoder is not None:
            h.update(json.dumps(self.encoder.to_dict(), sort_keys=True, default=str).encode())
        for key, tensor in sorted(self.tensors().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def tensors(self) -> dict[str, torch.Tensor]:
        """The weights file's content: the autoencoder's state dict and the prior."""
        out = {}
        if self.autoencoder is not None:
            out.update(self.autoencoder.state_dict())
        if self.prior is not None:
            out[PRIOR_KEYS[0]] = self.prior.mean
            out[PRIOR_KEYS[1]] = self.prior.precision
        if self.blend is not None:
            out[BLEND_KEYS[0]] = torch.from_numpy(self.blend.weights)
            out[BLEND_KEYS[1]] = torch.from_numpy(self.blend.data)
            out[BLEND_KEYS[2]] = torch.tensor([self.blend.seed], dtype=torch.int64)
            out[BLEND_KEYS[3]] = torch.from_numpy(self.blend.filled)
            if self.blend.copula_weights is not None:
                out[COPULA_KEY] = torch.from_numpy(self.blend.copula_weights)
            if self.blend.chained_weights is not None:
                out[CHAINED_KEY] = torch.from_numpy(self.blend.chained_weights)
            if self.blend.neighbour_weights is not None:
                out[NEIGHBOURS_KEY] = torch.from_numpy(self.blend.neighbour_weights)
        return out


#: Keys of the Gaussian prior's tensors in the weights file, beside the autoencoder's.
PRIOR_KEYS = ("prior.mean", "prior.precision")
#: ... and of the tree blend: its weights (passes x features), the rows its trees learn
#: from (NaN = missing), their seed, and the loop's imputation of those rows.
BLEND_KEYS = ("blend.weights", "blend.data", "blend.seed", "blend.filled")
#: ... and the copula step's weights (features), where the blend takes one.
COPULA_KEY = "blend.copula_weights"
#: ... and the chained regressions' step's weights (features), where the blend takes one.
CHAINED_KEY = "blend.chained_weights"
#: ... and the nearest rows' step's weights (features), where the blend takes one.
NEIGHBOURS_KEY = "blend.neighbour_weights"
