"""Execution paths of one reverse step, all computing :mod:`revml.reference`'s maths.

``"reference"``
    Eager PyTorch autograd through the frozen module (CPU and GPU; any ``nn.Module``).
``"compile"``
    ``torch.compile`` of the whole step: ``torch.func.grad`` of the reference loss and the
    masked Adam update traced as one graph (any ``nn.Module``), with CUDA graphs on a GPU.
``"triton"``
    Fused Triton kernels for MLP autoencoders (:mod:`revml.ops`).
``"auto"``
    ``"triton"`` for an MLP on a GPU, else ``"compile"`` on a GPU; on the CPU ``"compile"``
    for jobs large enough to repay compiling, else ``"reference"`` (see
    :func:`resolve_backend`).

Every step function has the signature of :func:`revml.reference.reference_step` and
updates ``x``, ``m`` and ``v`` in place.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
from torch import nn

from .errors import BackendUnavailableError
from .reference import (
    ReverseConfig,
    adam_update,
    column_keys,
    keep_from_keys,
    reference_step,
    reverse_loss,
    row_keys,
)

BACKENDS = ("auto", "reference", "compile", "triton")

StepFn = Callable[..., torch.Tensor]


def triton_available(device: torch.device) -> bool:
    """Whether the fused Triton kernels can run on ``device``."""
    if importlib.util.find_spec("triton") is None:
        return False
    if device.type == "cuda":
        return True
    import os

    return os.environ.get("TRITON_INTERPRET") == "1"


#: On the CPU, ``"auto"`` compiles only jobs of at least this many multiply-adds: the
#: job's sample-steps (rows times steps) times the module's weights (a linear layer's
#: multiply-adds a row; :func:`row_macs`). Compiling costs seconds whatever the network
#: (3.5 to 5.4 s a batch shape on the 2-core x86 CPU), so it repays only where the eager
#: step is slow. A 784-512-128-12 autoencoder (937k weights): the compiled step 1.34x
#: faster than eager at 1,024 rows and 1.57x at 4,096 (benchmarks/results/
#: reverse_step_cpu.json), repaid after about 200k sample-steps, 1.9e11 multiply-adds. A
#: table's network is a thousand times smaller and its eager step as cheap: on the 3,000 x
#: 9 wage table, 450k sample-steps a loop, compiling every loop cost a first fit 23.0 s
#: (7.2 s with inductor's cache warm) against 4.6 s eager, and saved 0.3 s of a transform
#: (benchmarks/bench_compile_rule.py, compile_rule.json: four tables of 2,700 to 7,425 rows).
#: At 20,000 and 26,115 rows (compile_rule_large.json) compiling paid 14% and 5% of fit +
#: transform with the cache warm but cost 33% and 30% with it empty: eager still.
CPU_COMPILE_MIN_MACS = 2e11


def row_macs(module: nn.Module) -> int:
    """The weights of ``module``'s matrices and kernels (parameters of 2 dimensions or more):
    a linear layer's multiply-adds a row, a lower bound for a convolution's."""
    return sum(p.numel() for p in module.parameters() if p.ndim >= 2)


def _cpu_compiler_available() -> bool:
    import os
    import shutil

    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if c)


def resolve_backend(
    backend: str, module: nn.Module, device: torch.device, work: int | None = None
) -> str:
    """The concrete path for ``backend`` on ``device``.

    ``work`` is the job size in sample-steps (rows times steps); on the CPU ``"auto"``
    compiles only when ``work`` times :func:`row_macs` reaches :data:`CPU_COMPILE_MIN_MACS`
    and a C++ compiler exists.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        if device.type != "cuda":
            big = work is not None and work * row_macs(module) >= CPU_COMPILE_MIN_MACS
            return "compile" if big and _cpu_compiler_available() else "reference"
        from .ops import supports_triton

        return "triton" if supports_triton(module) else "compile"
    if backend == "triton":
        from .ops import supports_triton

        if not supports_triton(module):
            raise ValueError(
                "backend='triton' needs an MLP autoencoder (encoder/decoder nn.Sequential "
                "of nn.Linear and ReLU/LeakyReLU/Tanh/Sigmoid/Identity); use "
                "backend='compile' or 'reference' for other modules"
            )
        if not triton_available(device):
            raise BackendUnavailableError(
                f"backend='triton' needs a CUDA device or TRITON_INTERPRET=1 (device is "
                f"{device}); use backend='auto' to fall back to the fastest available path"
            )
    return backend


def make_step_fn(
    backend: str, module: nn.Module, cfg: ReverseConfig, device: torch.device
) -> StepFn:
    """Step function for a resolved backend name."""
    if backend == "reference":
        return reference_step
    if backend == "compile":
        return _CompiledStep(module, cfg, device)
    if backend == "triton":
        from .ops import triton_step

        return triton_step
    raise ValueError(f"unresolved backend {backend!r}")


class _CompiledStep:
    """``torch.compile`` of one full reverse step (forward, input gradient, Adam).

    Built for one module and one config, which the graph bakes in; the step number and
    the dropout keys enter as tensors, so the graph compiles once per batch shape, not
    once per step. The driver pads the last batch to the same shape.
    """

    def __init__(self, module: nn.Module, cfg: ReverseConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.module = module
        mode = "reduce-overhead" if device.type == "cuda" else None
        self._compiled = torch.compile(self._step, fullgraph=True, dynamic=False, mode=mode)
        self._ckeys: torch.Tensor | None = None

    def _step(self, x, miss, m, v, rkeys, ckeys, bias1, bias2, lo, hi):
        cfg = self.cfg

        def total(xx):
            keep = keep_from_keys(rkeys, ckeys, cfg.dropout) if cfg.dropout > 0 else None
            loss = reverse_loss(self.module, xx, miss, keep, cfg)
            return loss.sum(), loss

        grad, loss = torch.func.grad(total, has_aux=True)(x)
        x_new, m_new, v_new = adam_update(x, grad, m, v, miss, bias1, bias2, cfg, lo, hi)
        return x_new, m_new, v_new, loss

    def __call__(self, module, x, miss, m, v, rows, step, cfg, lo=None, hi=None):
        if module is not self.module or cfg is not self.cfg:
            raise ValueError(
                "this compiled step was built for another module or config: make a new one "
                "with make_step_fn"
            )
        if self._ckeys is None or self._ckeys.shape[0] != x.shape[1]:
            self._ckeys = column_keys(x.shape[1], x.device)
        rkeys = row_keys(cfg.seed, rows, step)
        bias1 = torch.tensor(1.0 - cfg.beta1**step, dtype=x.dtype, device=x.device)
        bias2 = torch.tensor(1.0 - cfg.beta2**step, dtype=x.dtype, device=x.device)
        x_new, m_new, v_new, loss = self._compiled(
            x, miss, m, v, rkeys, self._ckeys, bias1, bias2, lo, hi
        )
        x.copy_(x_new)
        m.copy_(m_new)
        v.copy_(v_new)
        return loss.clone()
