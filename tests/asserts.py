"""One verbose closeness check for every numeric test."""

from __future__ import annotations

import torch

#: Tolerances of a float32 computation against the float64 oracle, per dtype of the fast
#: path: float32 rounding (unit roundoff 6e-8) accumulated over reductions of a few hundred
#: terms stays below 1e-5 relative; float64 agrees to rounding.
TOLERANCES = {
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
}


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, *, rtol: float, atol: float, name: str = "tensor"
) -> None:
    """``|actual - expected| <= atol + rtol * |expected|`` everywhere, or a full report."""
    actual = torch.as_tensor(actual).detach().double().cpu()
    expected = torch.as_tensor(expected).detach().double().cpu()
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    nan_a, nan_e = torch.isnan(actual), torch.isnan(expected)
    inf_a = torch.isinf(actual)
    err = (actual - expected).abs()
    bad = (err > atol + rtol * expected.abs()) | (nan_a != nan_e) | inf_a
    if bad.any():
        finite = err[~(nan_a | nan_e)]
        idx = torch.nonzero(bad)[0].tolist()
        raise AssertionError(
            f"{name}: {int(bad.sum())}/{bad.numel()} mismatches (rtol={rtol}, atol={atol}); "
            f"max abs err {finite.max().item() if finite.numel() else float('nan'):.3e}, "
            f"mean abs err {finite.mean().item() if finite.numel() else float('nan'):.3e}; "
            f"NaN actual/expected {int(nan_a.sum())}/{int(nan_e.sum())}, inf {int(inf_a.sum())}; "
            f"first at {idx}: {actual[tuple(idx)].item()!r} vs {expected[tuple(idx)].item()!r}"
        )
