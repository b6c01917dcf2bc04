"""What a user downloads is honest: the licence, the third-party notices of the bundled front end,
and the sources of everything shipped (widget TypeScript, tests, notebooks) in the sdist."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "agentgraph_nb" / "static"

pytest.importorskip("hatchling", reason="the dev extra installs hatchling")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "agentgraph_nb"
    # Build from a copy without node_modules/caches, as from a clean checkout.
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns("node_modules", ".git", ".venv*", "__pycache__", "*.db*",
                                      ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-t", "wheel", "-d", str(out)],
        cwd=src, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_license_file_matches_the_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()


def test_bundles_carry_their_third_party_notices() -> None:
    notices = (STATIC / "THIRD_PARTY_LICENSES.txt").read_text()
    for pkg in ("@dagrejs/dagre", "@dagrejs/graphlib"):  # graphlib is inlined in dagre's dist
        assert f"{pkg} " in notices, pkg
    assert "Permission is hereby granted" in notices
    for bundle in STATIC.glob("*.js"):
        head = bundle.read_text()[:400]
        assert "THIRD_PARTY_LICENSES.txt" in head, f"{bundle.name} does not point at the notices"


def test_sdist_holds_sources_tests_and_licences(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for need in (
        "LICENSE",
        "agentgraph_nb/static/THIRD_PARTY_LICENSES.txt",
        "agentgraph_nb/static/graphview.js",
        "widgets/src/graphview.ts",
        "widgets/build.mjs",
        "widgets/package-lock.json",
        "tests/test_engine.py",
        "notebooks/01_quickstart.ipynb",
    ):
        assert need in names, f"{need} missing from the sdist"
    assert not any("node_modules" in n for n in names)


def test_wheel_ships_the_licences(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta
    licences = [n for n in names if ".dist-info/licenses/" in n]
    assert any(n.endswith("/LICENSE") for n in licences), licences
    assert any(n.endswith("THIRD_PARTY_LICENSES.txt") for n in licences), licences
    assert "agentgraph_nb/static/THIRD_PARTY_LICENSES.txt" in names
    assert not any(n.startswith("tests/") for n in names)
