"""The operator builds InferenceServices from kserve.models without loading KServe's
model server (pandas, numpy, FastAPI, grpc: ~4 s and ~70 MiB of a cold start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPERATOR = str(Path(__file__).parents[2] / "operator")


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": OPERATOR, "PATH": "/usr/bin:/bin"},
    ).stdout


def test_the_operator_does_not_import_the_model_server() -> None:
    out = _run(
        "import sys, rung.handlers, rung.reconciler, rung.cli\n"
        "from rung.plan.inference_service import build_inference_service\n"
        "from rung.plan.kserve_package import loaded_fully\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'fastapi', 'grpc') if m in sys.modules),"
        " loaded_fully())"
    )
    assert out.strip() == "[] False"


def test_all_of_kserve_is_still_there_for_whoever_asks() -> None:
    out = _run(
        "import rung.plan.inference_service\n"
        "import kserve\n"
        "from rung.plan.kserve_package import loaded_fully\n"
        "print(kserve.Model.__name__, kserve.ModelServer.__name__, loaded_fully())"
    )
    assert out.strip() == "Model ModelServer True"
