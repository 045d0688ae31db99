"""Launchers of the fused Triton kernels and the ``revml::`` custom op of one reverse step.

``triton_step`` has exactly the signature of :func:`revml.reference.reference_step`.
Importing it (first attribute access) imports Triton and registers
``torch.ops.revml.reverse_step_``; :func:`supports_triton` needs neither.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from torch import nn

from revml.model import mlp_layers
from revml.ops._kernels_import import ensure_kernels_importable

# Before any submodule imports revml.kernels (a no-op where the package is installed).
ensure_kernels_importable()

__all__ = ["supports_triton", "triton_step"]


def supports_triton(module: nn.Module) -> bool:
    """Whether :func:`triton_step` can run ``module``: Triton is installed and
    :func:`revml.model.mlp_layers` describes the module as fused layers."""
    return importlib.util.find_spec("triton") is not None and mlp_layers(module) is not None


def __getattr__(name: str) -> Any:
    # Lazy, so that supports_triton works where Triton is not installed (macOS, Windows).
    if name == "triton_step":
        from revml.ops.reverse_step import triton_step

        return triton_step
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
