"""The code stays lint-clean (ruff) and type-clean (mypy). Both tools are in the ``dev`` extra,
so these run in CI; they are skipped only where the tool is not installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (dev extra)")
def test_ruff_clean() -> None:
    proc = _run("ruff", "check", "agentgraph_nb", "tests", "benchmarks")
    assert proc.returncode == 0, f"ruff check failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (dev extra)")
def test_mypy_clean() -> None:
    proc = _run("mypy", "agentgraph_nb")
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}\n{proc.stderr}"
