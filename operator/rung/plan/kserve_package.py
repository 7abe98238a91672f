"""KServe's generated API models, without KServe's model server.

`import kserve` runs `kserve/__init__.py`, which first imports the model server
(FastAPI, pandas, numpy, grpc): about 4 s and 70 MiB for an operator that only
builds InferenceService manifests with `kserve.models` and serialises them with
`kserve.api_client`. `register()` puts the `kserve` package in `sys.modules` with
its `__init__` not yet run, so its submodules import on their own; the first
attribute asked of the package itself (`kserve.Model`, `kserve.ModelServer`) runs
the real `__init__` then, so code that wants all of KServe still gets it.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def register() -> None:
    """Make `kserve.models` importable without the model server (idempotent)."""
    if "kserve" in sys.modules:
        return
    spec = importlib.util.find_spec("kserve")
    if spec is None or spec.loader is None:
        return  # not installed: the import that needs it says so
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_all(name: str) -> Any:
        """`from kserve import rest` asks the package for a submodule: import just that.
        Anything else means someone wants all of KServe: run its own __init__ now."""
        if importlib.util.find_spec(f"kserve.{name}") is not None:
            return importlib.import_module(f"kserve.{name}")
        del package.__dict__["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = load_all
    sys.modules["kserve"] = package


def loaded_fully(module: ModuleType | None = None) -> bool:
    """Whether KServe's own __init__ (and so its model server) has run."""
    package = module or sys.modules.get("kserve")
    return package is not None and "Model" in package.__dict__
