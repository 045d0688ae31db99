"""The package's shape, as tests: import rules, one parameter table, one fitted state."""

from __future__ import annotations

import ast
import inspect
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from revml import ReverseImputer
from revml import params as param_table
from revml.errors import InvalidParameterError
from revml.reference import KERNEL_SCALARS, ReverseConfig
from revml.state import FittedState
from revml.trees import Pass, TreeBlend

ROOT = Path(__file__).resolve().parents[1]


def _blend(d: int) -> TreeBlend:
    """A one-pass blend without trees (weights only) over ``d`` features."""
    data = np.zeros((3, d), np.float32)
    return TreeBlend(np.zeros(d), [Pass(np.full(d, 0.5))], data, data.copy(), 0)


def _module_name(path: Path) -> str:
    if path.is_relative_to(ROOT / "kernels"):
        rel = path.relative_to(ROOT / "kernels").with_suffix("")
        return ".".join(("revml", "kernels", *rel.parts)).removesuffix(".__init__")
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every revml (and triton) module ``path`` imports, at any depth of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ("revml", "triton")}


def _graph() -> dict[str, set[str]]:
    files = [*(ROOT / "revml").rglob("*.py"), *(ROOT / "kernels").rglob("*.py")]
    modules = {_module_name(f): f for f in files}
    graph = {}
    for name, path in modules.items():
        # "from .x import y" names module x, or y when y is a module itself
        graph[name] = {m for m in _imports(path) if m in modules or m.startswith("triton")}
    return graph


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    internal = {k: {m for m in v if m in graph and m != k} for k, v in graph.items()}
    # Package __init__ files re-export their children; an edge into a package's own
    # __init__ from inside it is not a cycle of the design.
    for name, deps in internal.items():
        internal[name] = {d for d in deps if not name.startswith(d + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(internal[node]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(internal):
        if node not in state:
            visit(node)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("revml.reference", ("triton", "revml.ops", "revml.kernels")),
        ("revml.persistence", ("revml.imputer",)),
        ("revml.state", ("revml.imputer",)),
        ("revml.fitting", ("revml.imputer",)),
        ("revml.imputation", ("revml.imputer",)),
    ],
)
def test_layers_do_not_import_upwards(module, forbidden):
    deps = _graph()[module]
    bad = sorted(d for d in deps if d.startswith(forbidden))
    assert not bad, f"{module} imports {bad}"


def test_the_kernel_layers_never_import_the_estimator():
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith(("revml.ops", "revml.kernels")):
            bad = [d for d in deps if d.startswith(("revml.imputer", "revml.baselines"))]
            assert not bad, f"{name} imports {bad}"
        if name.startswith("revml.kernels"):
            assert all(d.startswith(("triton", "revml.kernels")) for d in deps), (name, deps)


def test_the_rules_catch_a_cycle(tmp_path, monkeypatch):
    """The checker itself: a planted upward import is reported."""
    fake = {"revml.a": {"revml.b"}, "revml.b": {"revml.a"}}
    monkeypatch.setattr(f"{__name__}._graph", lambda: fake)
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_the_import_graph_has_no_cycle()


def test_the_estimator_signature_is_the_parameter_table():
    signature = inspect.signature(ReverseImputer.__init__).parameters
    table = param_table.parameters()
    assert [p.name for p in table] == [n for n in signature if n != "self"]
    for p in table:
        default = signature[p.name].default
        same = default is p.default or default == p.default
        assert same or (np.isnan(default) and np.isnan(p.default)), p.name
        p.check(p.default)  # every default satisfies its own constraints


def test_reverse_config_defaults_are_the_estimators():
    cfg = ReverseConfig()
    for p in param_table.parameters():
        if p.config is not None:
            assert getattr(cfg, p.config) == p.default, p.name
    assert {f.name for f in fields(ReverseConfig)} >= set(KERNEL_SCALARS)
    assert cfg.dropout_rescale is False  # the estimator's "auto" for a masked autoencoder


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_steps": -1}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"dropout": float("nan")}, "dropout"),
        ({"clamp": "yes"}, "clamp"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"image_shape": (8,)}, "image_shape"),
        ({"n_restarts": True}, "n_restarts"),
        ({"prior_weight": "high"}, "prior_weight"),
        ({"max_categories": 0}, "max_categories"),
    ],
)
def test_the_table_rejects_bad_values_with_the_parameter_named(params, match):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InvalidParameterError, match=match):
        ReverseImputer(**params).fit(X)


def test_parameters_set_after_fit_are_checked_at_transform():
    X = np.random.default_rng(0).normal(size=(30, 3))
    X[::4, 0] = np.nan
    imp = ReverseImputer(random_state=0, epochs=1, n_steps=2).fit(X)
    with pytest.raises(InvalidParameterError, match="batch_size"):
        imp.set_params(batch_size=0).transform(X)


def test_legacy_values_are_the_behaviour_of_old_files():
    legacy = param_table.legacy_defaults()
    assert legacy["n_restarts"] == 1 and legacy["masking"] == "none"
    assert legacy["prior_weight"] == 0.0 and legacy["clean_samples"] == 1


def test_the_fingerprint_covers_every_field_of_the_state():
    X = np.random.default_rng(0).normal(size=(40, 4))
    X[::5, 1] = np.nan
    state = ReverseImputer(random_state=0, epochs=1, n_steps=2).fit(X).state_
    base = state.fingerprint()
    covered = {"scaler", "autoencoder", "masked", "radius", "prior_weight", "prior", "encoder"}
    covered |= {"training", "device", "pretrained", "blend", "_device_prior"}
    # A new field of FittedState must be hashed (or consciously listed here).
    assert {f.name for f in fields(FittedState)} == covered
    for change in (
        lambda s: s.scaler.offset.__setitem__(0, s.scaler.offset[0] + 1e-12),
        lambda s: setattr(s, "radius", s.radius * 2),
        lambda s: setattr(s, "masked", not s.masked),
        lambda s: setattr(s, "prior_weight", 0.5),
        lambda s: s.autoencoder.encoder[0].bias.data.add_(1e-6),
        lambda s: setattr(s, "blend", _blend(4)),
    ):
        copy_ = ReverseImputer(random_state=0, epochs=1, n_steps=2).fit(X).state_
        change(copy_)
        assert copy_.fingerprint() != base
