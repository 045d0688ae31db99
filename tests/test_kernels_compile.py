"""Every kernel compiles for an H100 (sm_90), on a machine without a GPU.

The interpreter runs kernels as NumPy and accepts code the compiler rejects (Python floats
where tensors are expected, mixed integer widths...), so CI without a GPU would otherwise
never compile them. ``triton.compile`` with an explicit target needs no driver: it runs
the whole pipeline down to a cubin with the ptxas shipped in the triton wheel. It must run
without TRITON_INTERPRET (which turns ``@triton.jit`` into interpreted functions), hence
the subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="the Triton kernels need the triton package")

pytestmark = pytest.mark.kernels

ROOT = Path(__file__).resolve().parents[1]

# Pointer element types by parameter name (default fp32) and the integer scalars (default
# for other scalars: fp32).
POINTER_TYPES = {"rows_ptr": "*i64", "miss_ptr": "*u8", "mask_ptr": "*i8"}
INT_SCALARS = {"seed_lo", "seed_hi", "step", "threshold", "M", "N", "K"}

# (kernel, constexprs, extra pointer types, float scalar type): the feature-rich and the
# bare specialisation of each kernel; "fp64" scalars are what Inductor may pass.
CASES = [
    (
        "linear_forward",
        dict(
            ACTIVATION="relu", HAS_BIAS=True, SAVE_MASK=True, DROPOUT=True, INPUT_PRECISION="ieee"
        ),
        {},
        "fp32",
    ),
    (
        "linear_forward",
        dict(
            ACTIVATION="tanh",
            HAS_BIAS=False,
            SAVE_MASK=False,
            DROPOUT=False,
            INPUT_PRECISION="tf32",
        ),
        {},
        "fp64",
    ),
    ("output_loss", dict(ACTIVATION="sigmoid", HAS_BIAS=True, INPUT_PRECISION="ieee"), {}, "fp32"),
    (
        "output_loss",
        dict(ACTIVATION="leaky_relu", HAS_BIAS=False, INPUT_PRECISION="ieee"),
        {},
        "fp64",
    ),
    (
        "linear_backward",
        dict(ACTIVATION="relu", SPHERE=True, CODE_IN_TILE=False, INPUT_PRECISION="ieee"),
        {"saved_ptr": "*i8"},
        "fp32",
    ),
    (
        "linear_backward",
        dict(ACTIVATION="tanh", SPHERE=True, CODE_IN_TILE=True, INPUT_PRECISION="ieee"),
        {},
        "fp64",
    ),
    (
        "linear_backward",
        dict(ACTIVATION="identity", SPHERE=False, CODE_IN_TILE=True, INPUT_PRECISION="tf32"),
        {},
        "fp32",
    ),
    (
        "input_update",
        dict(DROPOUT=True, HAS_LO=True, HAS_HI=True, INPUT_PRECISION="ieee"),
        {},
        "fp64",
    ),
    (
        "input_update",
        dict(DROPOUT=False, HAS_LO=False, HAS_HI=False, INPUT_PRECISION="ieee"),
        {"rows_ptr": "*fp32"},
        "fp32",
    ),
]


def check_compile() -> None:
    import importlib

    import triton
    from triton.backends import backends
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from revml.ops.plan import ACTIVATION_CODES  # also makes revml.kernels importable

    assert "nvidia" in backends, f"the triton wheel has no NVIDIA backend: {list(backends)}"
    for name, constexprs, pointers, float_type in CASES:
        kernel = getattr(importlib.import_module(f"revml.kernels.{name}"), f"{name}_kernel")
        constexprs = {**constexprs, "BLOCK_M": 64, "BLOCK_N": 32, "BLOCK_K": 64}
        if "ACTIVATION" in constexprs:
            constexprs["ACTIVATION"] = ACTIVATION_CODES[constexprs["ACTIVATION"]]
        signature = {}
        for param in kernel.params:
            arg = param.name
            if param.is_constexpr:
                signature[arg] = "constexpr"
            elif arg.endswith("_ptr"):
                signature[arg] = pointers.get(arg, POINTER_TYPES.get(arg, "*fp32"))
            else:
                signature[arg] = "i32" if arg in INT_SCALARS else float_type
        if constexprs.get("SAVE_MASK") is False:
            signature["mask_ptr"] = "*fp32"
        if constexprs.get("DROPOUT") is False:
            signature["rows_ptr"] = "*fp32"
        compiled = triton.compile(
            ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
            target=GPUTarget("cuda", 90, 32),
        )
        assert compiled.asm.get("cubin"), f"{name} {constexprs}: no cubin"


def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    code = "import test_kernels_compile as t\nt.check_compile()\n"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
