"""One cold-start measurement in a fresh process (run by bench.coldstart); imports only what it
times, so that nothing is loaded before the clock starts.

    python -m bench.coldstart_child handler NAME | clients SERVICE... | pandas
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

# Not bench.core's ROOT: importing bench.core would load modules before the clock starts.
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "pyarrow")  # what predict and deploy must not import


def load_function(function: str) -> ModuleType:
    """Import ``functions/<function>/app.py`` as Lambda's init does (its module-level code runs)."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"dropfit_function_{function}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_handler(function: str) -> dict[str, Any]:
    started = time.perf_counter()
    load_function(function)
    seconds = time.perf_counter() - started
    imported = {n.split(".")[0] for n in sys.modules}
    return {"seconds": seconds, "heavy": sorted(imported.intersection(HEAVY))}


def create_clients(services: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    import boto3

    for service in services:
        boto3.client(service)  # type: ignore[call-overload]
    return {"seconds": time.perf_counter() - started}


def import_pandas() -> dict[str, Any]:
    started = time.perf_counter()
    import pandas  # noqa: F401

    return {"seconds": time.perf_counter() - started}


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "handler":
        print(json.dumps(import_handler(rest[0])))
    elif kind == "clients":
        print(json.dumps(create_clients(rest)))
    else:
        print(json.dumps(import_pandas()))
