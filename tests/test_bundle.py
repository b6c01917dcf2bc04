"""The committed front-end bundles (agentgraph_nb/static/*.js) are exactly what the sources in
widgets/ build to: a clean ``npm ci`` and ``npm run build`` in a temporary copy of widgets/ must
give identical bytes. Skipped only where Node is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WIDGETS = ROOT / "widgets"
STATIC = ROOT / "agentgraph_nb" / "static"
HOW_TO_FIX = "rebuild and commit: npm --prefix widgets ci && npm --prefix widgets run build"


def _run(cmd: list[str], cwd: Path) -> None:
    env = {
        **os.environ,
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_update_notifier": "false",
    }
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_rebuilt_bundles_are_identical_to_the_committed_ones(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    assert npm, "node is installed but npm is not on PATH"
    work = tmp_path / "widgets"
    shutil.copytree(WIDGETS, work, ignore=shutil.ignore_patterns("node_modules"))
    out = tmp_path / "agentgraph_nb" / "static"
    out.mkdir(parents=True)
    _run([npm, "ci"], work)
    _run([npm, "run", "build"], work)

    built = sorted(p.name for p in out.glob("*.js"))
    committed = sorted(p.name for p in STATIC.glob("*.js"))
    assert "graphview.js" in built
    assert built == committed, f"bundles built {built} != committed {committed}; {HOW_TO_FIX}"
    for name in built:
        assert (out / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"{name} is stale; {HOW_TO_FIX}"
        )
