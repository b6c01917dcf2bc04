"""A throwaway JupyterLab server and page for whole-notebook browser tests.

``JupyterLab(workdir, tmp)`` starts ``jupyter lab`` on loopback (a free port, ``port_retries=0`` so
a busy port is an error rather than a silent move to another server, a random token, no browser)
with every Jupyter directory (config, data, runtime, IPython, lab settings and workspaces) in
``tmp``, so that nothing of the user's or the virtual environment's configuration is read or
written. JupyterLab's news pop-up (the announcements plugin) is disabled there. ``stop()`` ends
the server by its PID (SIGTERM, then SIGKILL after a grace period) and then any kernel it left
behind, again by PID.

The page helpers drive JupyterLab through ``window.jupyterapp`` (``--LabApp.expose_app_in_browser``):
the toolbar's kernel indicator is not trusted; the kernel object itself is asked.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

#: Debian's Chromium (as in conftest.py); Playwright's own browser download is never used.
CHROMIUM = os.environ.get("AGENTGRAPH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"

#: Front-end plugins the notebook's widgets need (ids as JupyterLab registers them), with the
#: Python package that ships each one.
WIDGET_PLUGINS = {
    "@jupyter-widgets/jupyterlab-manager:plugin": "jupyterlab_widgets (ipywidgets' lab extension)",
    "anywidget:plugin": "anywidget (its lab extension ships in the anywidget wheel)",
}

KERNEL_READY_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === "connected" && k.status === "idle";
}"""

# Every code cell has an execution count and the kernel is idle again: the run is over.
RUN_DONE_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  if (!k || k.connectionStatus !== "connected" || k.status !== "idle") return false;
  const cells = w.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type === "code" && (c.executionCount === null || c.executionCount === undefined)) {
      return false;
    }
  }
  return true;
}"""

CELLS_JS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== "code") continue;
    out.push({
      index: i,
      source: c.sharedModel.getSource(),
      count: c.executionCount,
      outputs: c.outputs.toJSON(),
    });
  }
  return out;
}"""

PLUGINS_JS = """(ids) => {
  const app = window.jupyterapp;
  const out = {};
  for (const id of ids) {
    out[id] = !app.hasPlugin(id) ? "missing" : (app.isPluginActivated(id) ? "active" : "inactive");
  }
  return out;
}"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """PIDs of the process's descendants (the kernels a server started)."""
    try:
        import psutil  # ipykernel depends on it
    except ImportError:  # pragma: no cover
        return []
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    try:  # a zombie that is not our child is still listed: ask its state
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class JupyterLab:
    """``jupyter lab`` serving ``workdir``; its state lives under ``home`` (a temp dir)."""

    def __init__(self, workdir: Path, home: Path, *, start_timeout: float = 60.0) -> None:
        self.workdir = Path(workdir)
        self.home = Path(home)
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "jupyterlab.log"
        self.env = self._env()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_DATA_DIR": "data",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "IPYTHONDIR": "ipython",
        }
        for var, sub in dirs.items():
            (self.home / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.home / sub)
        # JupyterLab's own settings and workspaces default to JUPYTER_CONFIG_DIR/lab/...: make sure
        # an inherited value does not point elsewhere.
        env.pop("JUPYTERLAB_SETTINGS_DIR", None)
        env.pop("JUPYTERLAB_WORKSPACES_DIR", None)
        env.pop("JUPYTER_PREFER_ENV_PATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- lifecycle ------------------------------------------------------------------------------

    def disable_announcements(self) -> None:
        """``jupyter labextension disable`` the news pop-up, at the user level (our temp dir)."""
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter",
                "labextension",
                "disable",
                "--level=user",
                ANNOUNCEMENTS,
            ],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        page_config = json.loads(
            (self.home / "config" / "labconfig" / "page_config.json").read_text()
        )
        assert page_config["disabledExtensions"][ANNOUNCEMENTS] is True

    def start(self) -> JupyterLab:
        self.disable_announcements()
        last = ""
        for _ in range(3):  # another process may take the free port before the server binds it
            self.port = free_port()
            cmd = [
                sys.executable, "-m", "jupyter", "lab",
                "--no-browser", "--allow-root",
                "--ip", "127.0.0.1", "--port", str(self.port),
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                "--LabApp.expose_app_in_browser=True",
                f"--ServerApp.root_dir={self.workdir}",
            ]  # fmt: skip
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    cmd,
                    cwd=self.workdir,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                log.close()
            if self._wait_ready():
                return self
            last = self.log_tail()
            self.stop()
            if "already in use" not in last and "Errno 98" not in last:
                break
        raise RuntimeError(f"jupyter lab did not start; its log ({self.log_path}):\n{last}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        req = urllib.request.Request(
            f"{self.base_url}/api/status", headers={"Authorization": f"token {self.token}"}
        )
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        return False

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the server by its PID (it shuts its kernels down), then end leftovers by PID."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        kids = _children(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in kids:  # kernels the server did not manage to stop
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for pid in kids:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses and logs -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        return f"{self.base_url}/lab/tree/{name}?reset&token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


# -- the page ---------------------------------------------------------------------------------------


def wait_for_kernel(page: Any, timeout: float = 60_000) -> None:
    """Until the open notebook's kernel is connected and idle (the kernel object, not the toolbar)."""
    page.wait_for_function(KERNEL_READY_JS, timeout=timeout, polling=100)


def run_all(page: Any, timeout: float = 60_000) -> list[dict[str, Any]]:
    """Clear every output, run all cells, wait until each code cell has an execution count and the
    kernel is idle; returns the code cells (index, source, count, outputs)."""
    page.evaluate(
        """async () => {
          const cmds = window.jupyterapp.commands;
          await cmds.execute("notebook:clear-all-cell-outputs");
          cmds.execute("notebook:run-all-cells");  // resolves only when the run is over: not awaited
        }"""
    )
    page.wait_for_function(RUN_DONE_JS, timeout=timeout, polling=100)
    return code_cells(page)


def code_cells(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate(CELLS_JS))


def plugin_states(page: Any, ids: list[str]) -> dict[str, str]:
    """``{plugin id: "active" | "inactive" | "missing"}`` in the running JupyterLab."""
    return dict(page.evaluate(PLUGINS_JS, ids))


def cell_with(page: Any, needle: str) -> Any:
    """The notebook cell (DOM) whose source contains ``needle``."""
    return page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea", has_text=needle)
    )
