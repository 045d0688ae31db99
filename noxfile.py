"""nox sessions. All torch sessions share one virtual environment (.nox/shared): torch is
5 GB, so a fresh machine installs it once, and later runs reuse it while pyproject.toml is
unchanged.

    nox -s tests      reference path: the default test run (no slow, no kernel tests)
    nox -s kernels    Triton kernel path, executed on the CPU under TRITON_INTERPRET=1
    nox -s lint       ruff check + ruff format --check
    nox -s slow       the slow tests (full-size runs)
    nox -s mnist      the MNIST reproduction (revml mnist; extra args after --)
    nox -s bench      the reverse-step benchmark (extra args after --)
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests", "kernels", "lint"]
nox.options.default_venv_backend = "none"

ROOT = Path(__file__).resolve().parent
SHARED = ROOT / ".nox" / "shared"
BIN = SHARED / ("Scripts" if sys.platform == "win32" else "bin")
# torch 2.14.1 / torchvision 0.29.1 are the newest this project is tested with; pip takes
# them from the local wheel store where the machine has one.
TORCH = ["torch>=2.11,<=2.14.1", "torchvision>=0.26,<=0.29.1"]


def _shared_env(session: nox.Session) -> str:
    """Create or update the shared venv; return its python."""
    python = str(BIN / "python")
    stamp = SHARED / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not (BIN / "python").exists():
        session.run(sys.executable, "-m", "venv", str(SHARED), external=True)
    if not stamp.exists() or stamp.read_text() != want:
        session.run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", external=True)
        session.run(python, "-m", "pip", "install", "--quiet", *TORCH, external=True)
        session.run(python, "-m", "pip", "install", "--quiet", "-e", ".[test,lint]", external=True)
        stamp.write_text(want)
    return python


def _pytest(session: nox.Session, *args: str, env: dict | None = None) -> None:
    python = _shared_env(session)
    session.run(
        python,
        "-m",
        "pytest",
        *args,
        *session.posargs,
        external=True,
        env={"PYTHONHASHSEED": "0", **(env or {})},
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The reference path and everything else that is not slow or a kernel test, plus the
    examples in the package's docstrings."""
    _pytest(session, "-m", "not slow and not kernels", "-q", "--doctest-modules", "tests", "revml")


@nox.session
def kernels(session: nox.Session) -> None:
    """The Triton kernels, really executed: on the CPU through the Triton interpreter."""
    env = {} if os.environ.get("REVML_KERNELS_ON_GPU") else {"TRITON_INTERPRET": "1"}
    _pytest(session, "-m", "kernels and not slow", "-q", env=env)


@nox.session
def slow(session: nox.Session) -> None:
    """Long runs: full-size checks."""
    _pytest(session, "-m", "slow", "-q")


@nox.session
def lint(session: nox.Session) -> None:
    python = _shared_env(session)
    paths = ["revml", "kernels", "tests", "benchmarks", "noxfile.py"]
    session.run(python, "-m", "ruff", "check", *paths, external=True)
    session.run(python, "-m", "ruff", "format", "--check", *paths, external=True)


@nox.session
def mnist(session: nox.Session) -> None:
    """The MNIST reproduction, on ../shared/data/mnist if present, else downloaded."""
    python = _shared_env(session)
    session.run(python, "-m", "revml.cli", "mnist", *session.posargs, external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Reverse-step benchmark: reference vs compile (vs triton on a GPU)."""
    python = _shared_env(session)
    session.run(python, "benchmarks/bench_reverse_step.py", *session.posargs, external=True)
