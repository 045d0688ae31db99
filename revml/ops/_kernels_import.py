"""Make ``revml.kernels`` importable from a source checkout that is not installed.

The wheel (and an editable install) maps the top-level ``kernels/`` folder to
``revml.kernels`` (``package-dir`` in pyproject.toml). Running from a plain checkout, as
``python -m pytest`` in the repository root does, that mapping does not exist, so it is
made here, once, from the same folder.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

_NAME = "revml.kernels"


def ensure_kernels_importable() -> None:
    """Import ``revml.kernels``, loading it from ``<repo>/kernels`` if it is not installed."""
    if _NAME in sys.modules:
        return
    try:
        importlib.import_module(_NAME)
        return
    except ModuleNotFoundError as error:
        if error.name != _NAME:
            raise
    folder = Path(__file__).resolve().parents[2] / "kernels"
    if not (folder / "__init__.py").is_file():
        raise ModuleNotFoundError(
            f"revml.kernels is not installed and {folder} is missing", name=_NAME
        )
    spec = importlib.util.spec_from_file_location(
        _NAME, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    importlib.import_module("revml").kernels = module
