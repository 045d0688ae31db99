"""Per-feature scaling of the autoencoder's space: :class:`FeatureScaler`.

The autoencoder and the reverse loop work on ``scaled = (x - offset) / span``, computed in
float64 and stored as float32. ``offset`` is each feature's minimum (``"minmax"``), its
mean (``"center"``: a hidden 0 then reads as the average value) or 0 (``"none"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DataError

SCALINGS = ("minmax", "center", "none")


def scaled(x: torch.Tensor, lo: torch.Tensor, span: torch.Tensor, name: str = "X") -> torch.Tensor:
    """``(x - lo) / span`` computed in float64, as float32; a clear error if an observed
    value leaves float32's range (the autoencoder and the reverse loop run in float32)."""
    xs = ((x.double() - lo) / span).float()
    bad = torch.isinf(xs)
    if bad.any():
        row, col = torch.nonzero(bad)[0].tolist()
        raise DataError(
            f"{name} has values too large to impute in float32: {int(bad.sum())} entries "
            f"exceed +-{torch.finfo(torch.float32).max:.3g} after scaling to the training "
            f"range (first: row {row}, column {col} = {float(x[row, col]):.6g}). Rescale the "
            "data, or use scaling='minmax' so it is scaled before float32"
        )
    return xs


@dataclass
class FeatureScaler:
    """What ``fit`` learnt about each feature, in the scaled space.

    ``offset`` and ``span`` (float64) map original units to scaled ones; ``means`` and
    ``medians`` are the observed training values' column statistics, ``clip_lo`` and
    ``clip_hi`` their range (float32), all in scaled units. A feature never observed in
    fit gets offset 0, span 1, mean and median 0 and the range [0, 1].
    """

    offset: np.ndarray
    span: np.ndarray
    means: np.ndarray
    medians: np.ndarray
    clip_lo: np.ndarray
    clip_hi: np.ndarray

    @property
    def n_features(self) -> int:
        return len(self.offset)

    @classmethod
    def fit(cls, x: torch.Tensor, mode: str) -> tuple[FeatureScaler, torch.Tensor]:
        """Fit on ``x`` (N, D; NaN = missing) with ``mode`` in :data:`SCALINGS`; return the
        scaler and ``x`` scaled (float32)."""
        if mode not in SCALINGS:
            raise ValueError(f"unknown scaling {mode!r}; expected one of {SCALINGS}")
        observed = ~torch.isnan(x)
        lo_obs, hi_obs, empty = observed_range(x)
        d = x.shape[1]
        xd = x.double()
        if mode == "none":
            lo = torch.zeros(d, dtype=torch.float64)
            span = torch.ones(d, dtype=torch.float64)
        else:
            span = torch.where(hi_obs > lo_obs, hi_obs - lo_obs, 1.0)
            if not torch.isfinite(span).all():
                col = int(torch.nonzero(~torch.isfinite(span))[0])
                raise DataError(
                    f"feature {col} spans more than float64 can hold (min {lo_obs[col]:.6g}, "
                    f"max {hi_obs[col]:.6g}); rescale it"
                )
            if mode == "center":  # the column means (0 for a feature never observed)
                lo = torch.where(observed, xd, 0.0).sum(0) / observed.sum(0).clamp_min(1)
            else:
                lo = lo_obs
        xs = scaled(xd, lo, span)
        sums = torch.where(observed, xs, 0.0).sum(0)
        counts = observed.sum(0)
        means = torch.where(counts > 0, sums / counts.clamp_min(1), 0.0)
        medians = torch.nanmedian(torch.where(observed, xs, torch.nan), dim=0).values
        scaler = cls(
            offset=lo.numpy(),
            span=span.numpy(),
            means=means.numpy(),
            medians=torch.where(counts > 0, medians, 0.0).numpy(),
            clip_lo=torch.where(empty, 0.0, ((lo_obs - lo) / span)).float().numpy(),
            clip_hi=torch.where(empty, 1.0, ((hi_obs - lo) / span)).float().numpy(),
        )
        return scaler, xs

    def scale(self, x: torch.Tensor, name: str = "X") -> torch.Tensor:
        """``x`` in the scaled space (float64 arithmetic, float32 result)."""
        return scaled(x, torch.from_numpy(self.offset), torch.from_numpy(self.span), name)

    def unscale(self, xs: torch.Tensor) -> torch.Tensor:
        """Scaled values back in the original units (float64)."""
        return xs.double() * torch.from_numpy(self.span) + torch.from_numpy(self.offset)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name: what persistence writes and the fingerprint hashes."""
        return {
            "offset": self.offset,
            "span": self.span,
            "means": self.means,
            "medians": self.medians,
            "clip_lo": self.clip_lo,
            "clip_hi": self.clip_hi,
        }


def observed_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-feature observed minimum and maximum (float64; 0 and 1 for a feature never
    observed, with a warning) and the mask of those features."""
    observed = ~torch.isnan(x)
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
            stacklevel=4,
        )
    return torch.where(empty, 0.0, col_min), torch.where(empty, 1.0, col_max), empty


def in_unit_interval(x: torch.Tensor) -> bool:
    """Whether every observed value lies in [0, 1] (images: used as they are)."""
    observed = x[~torch.isnan(x)]
    return bool(observed.numel() == 0 or (observed.min() >= 0 and observed.max() <= 1))
