"""The ``revml::reverse_step_`` custom op: schema, CPU fallback, fake kernel, tracing.

Under ``TRITON_INTERPRET=1`` the kernels are interpreted functions that cannot be traced,
so the checks that need real ``triton.jit`` kernels (fake-tensor tracing, ``torch.compile``
capture, the reference fallback of the CPU kernel) run in a subprocess without it; they
need neither a GPU nor the interpreter.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton", reason="the Triton kernels need the triton package")

from revml.model import MLPAutoencoder
from revml.ops.plan import step_plan
from revml.ops.reverse_step import launch_step, reverse_step, run_plan
from revml.reference import ReverseConfig, dropout_scale, kernel_scalars, reference_step

pytestmark = pytest.mark.kernels

ROOT = Path(__file__).resolve().parents[1]
CFG = ReverseConfig(dropout=0.2, dropout_rescale=True, sphere_weight=0.1, seed=2**35 + 3)


def _problem():
    torch.manual_seed(0)
    ae = MLPAutoencoder(37, hidden=(19,), bottleneck=7)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(5, 37, generator=gen)
    miss = torch.rand(5, 37, generator=gen) < 0.3
    return ae, x, miss, torch.zeros_like(x), torch.zeros_like(x), torch.arange(5)


def _op_args(plan, x, miss, m, v, rows, step=2):
    return (
        x,
        miss,
        m,
        v,
        rows,
        step,
        plan.weights,
        plan.biases,
        plan.activations,
        plan.slopes,
        plan.n_encoder,
        # a Gaussian prior of weight 0.03: its (D,) mean and (D, D) precision travel as tensors
        kernel_scalars(replace(CFG, prior_weight=0.03)),
        dropout_scale(CFG),
        CFG.seed,
        None,
        None,
        "ieee",
        torch.full((x.shape[1],), 0.5),
        torch.eye(x.shape[1]) * 2.0,
    )


def test_schema_declares_the_mutations():
    schema = torch.ops.revml.reverse_step_.default._schema
    written = {a.name for a in schema.arguments if a.alias_info and a.alias_info.is_write}
    assert written == {"x", "m", "v"}
    assert [r.type for r in schema.returns] == [torch.TensorType.get()]


def check_cpu_fallback_is_the_reference():
    ae, x, miss, m, v, rows = _problem()
    state = [t.clone() for t in (x, m, v)]
    loss = run_plan(step_plan(ae, x.device), x, miss, m, v, rows, 1, CFG)
    expected = reference_step(ae, state[0], miss, state[1], state[2], rows, 1, CFG)
    for got, want in zip((loss, x, m, v), (expected, *state), strict=True):
        assert torch.equal(got, want)


def check_opcheck():
    ae, x, miss, m, v, rows = _problem()
    args = _op_args(step_plan(ae, x.device), x, miss, m, v, rows)
    result = torch.library.opcheck(
        reverse_step, args, test_utils=("test_schema", "test_faketensor")
    )
    assert set(result.values()) == {"SUCCESS"}, result


def check_dynamo_fullgraph():
    ae, x, miss, m, v, rows = _problem()
    plan = step_plan(ae, x.device)
    compiled = torch.compile(
        lambda x, m, v, step: run_plan(plan, x, miss, m, v, rows, step, CFG),
        fullgraph=True,
        backend="eager",
    )
    state = [t.clone() for t in (x, m, v)]
    loss = compiled(x, m, v, 1)
    expected = reference_step(ae, state[0], miss, state[1], state[2], rows, 1, CFG)
    assert torch.equal(loss, expected) and torch.equal(x, state[0])


def check_kernels_are_captured():
    """Fake-tensor tracing records each kernel launch as a ``triton_kernel_wrapper``
    node (what torch.compile hands to Inductor on a GPU), in execution order."""
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table
    from torch.fx.experimental.proxy_tensor import make_fx

    ae, x, miss, m, v, rows = _problem()
    plan = step_plan(ae, x.device)
    lo = torch.zeros(37)

    def step(x, miss, m, v, rows, lo, weights, biases):
        return launch_step(
            x,
            miss,
            m,
            v,
            rows,
            3,
            weights,
            biases,
            plan.activations,
            plan.slopes,
            plan.n_encoder,
            kernel_scalars(
                ReverseConfig(lr=0.02, dropout=0.2, missing_weight=1.0, sphere_weight=0.1)
            ),
            1.0 / (1.0 - 0.2),
            0,
            lo,
            None,
            "ieee",
            None,
            None,
        )

    graph = make_fx(step, tracing_mode="fake")(x, miss, m, v, rows, lo, plan.weights, plan.biases)
    names = [
        kernel_side_table.get_kernel(node.kwargs["kernel_idx"]).fn.__name__
        for node in graph.graph.nodes
        if "triton_kernel_wrapper" in str(node.target)
    ]
    assert names == ["linear_forward_kernel"] * 3 + ["output_loss_kernel"] + [
        "linear_backward_kernel"
    ] * 3 + ["input_update_kernel"], names


def test_without_interpreter():
    """The ``check_*`` functions above, in a Python without TRITON_INTERPRET."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    checks = [name for name in globals() if name.startswith("check_")]
    code = "import test_ops_registration as t\n" + "".join(f"t.{c}()\n" for c in checks)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_plan_follows_the_module_device_and_dtype():
    ae, x, *_ = _problem()
    ae64 = copy.deepcopy(ae).double()
    plan = step_plan(ae64, x.device)
    assert all(w.dtype == torch.float32 and w.is_contiguous() for w in plan.weights)
    assert plan.n_encoder == 2 and plan.n_features == 37
