"""A throwaway Ray cluster of several nodes on this machine, for notebooks, tests and benchmarks.

Each node is a real ``ray start`` (the head, then nodes joining it), on loopback, on free ports,
with its own temp dir and session; :meth:`LocalRayCluster.stop` kills exactly those processes (never
``ray stop``, which stops every cluster of the machine), :meth:`kill_node` one node's (what a
machine failure looks like to Ray).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

__all__ = ["LocalRayCluster"]


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _has_ray_client() -> bool:
    """Whether ``ray[client]`` is installed (the head then needs a port for its client server)."""
    try:
        from ray._private.utils import get_ray_client_dependency_error
    except ImportError:
        return False
    return get_ray_client_dependency_error() is None


def _session_pids(sid: int) -> list[int]:
    """Processes of session ``sid`` (Linux: /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and fields[3] == str(sid):
            out.append(int(d))
    return out


class LocalRayCluster:
    """Start a Ray cluster of ``nodes`` nodes on this machine (``with LocalRayCluster(2) as c:``).

    Args:
        nodes: how many Ray nodes (the head is the first).
        num_cpus: CPUs each node offers (an int, or one per node).
        num_gpus: GPUs each node claims (0 on a machine without; a test can claim a fake one).
        object_store_memory: bytes of object store per node.
        resources: custom resources per node (a dict, or one per node).

    Attributes:
        address: ``"127.0.0.1:PORT"``, what ``RayExecutor(address=...)`` and ``ray.init`` take.
    """

    def __init__(self, nodes: int = 2, *, num_cpus: int | list[int] = 1, num_gpus: int | list[int] = 0,
                 object_store_memory: int = 100_000_000, resources: dict[str, float] | list[Any] | None = None,
                 start_timeout: float = 60.0) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.n = nodes
        self.num_cpus = num_cpus if isinstance(num_cpus, list) else [num_cpus] * nodes
        self.num_gpus = num_gpus if isinstance(num_gpus, list) else [num_gpus] * nodes
        self.resources = resources if isinstance(resources, list) else [resources] * nodes
        self.object_store_memory = object_store_memory
        self.start_timeout = start_timeout
        self.dir = tempfile.mkdtemp(prefix="agr-ray-")
        self.address = ""
        self.sessions: list[int | None] = []  # one session (process group leader pid) per node
        self._ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray") or "ray"

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        alive = sum(1 for s in self.sessions if s is not None)
        return f"LocalRayCluster(address={self.address!r}, nodes={alive}/{len(self.sessions)})"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("RAY_AUTH_MODE", "disabled")
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        env.pop("RAY_ADDRESS", None)
        return env

    def _start_node(self, i: int, tries: int = 2) -> None:
        """Start node ``i``; a start that fails (on a loaded machine Ray's own start-up RPCs can
        time out) is cleaned up and tried again once."""
        for attempt in range(tries):
            try:
                self._start_node_once(i)
                return
            except RuntimeError:
                if attempt == tries - 1:
                    raise
                sid = self.sessions.pop()
                for pid in _session_pids(sid) if sid is not None else ():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                shutil.rmtree(os.path.join(self.dir, f"n{i}"), ignore_errors=True)

    def _start_node_once(self, i: int) -> None:
        (gcs, nm, om, dash, agent_l, agent_g, metrics, client, rte) = _free_ports(9)
        args = [self._ray_bin, "start", "--node-ip-address", "127.0.0.1",
                "--temp-dir", os.path.join(self.dir, f"n{i}"),
                "--num-cpus", str(self.num_cpus[i]), "--num-gpus", str(self.num_gpus[i]),
                "--object-store-memory", str(self.object_store_memory), "--disable-usage-stats",
                "--node-manager-port", str(nm), "--object-manager-port", str(om),
                "--dashboard-agent-listen-port", str(agent_l), "--dashboard-agent-grpc-port", str(agent_g),
                "--metrics-export-port", str(metrics), "--runtime-env-agent-port", str(rte)]
        if self.resources[i]:
            import json

            args += ["--resources", json.dumps(self.resources[i])]
        if i == 0:
            args += ["--head", "--port", str(gcs), "--include-dashboard", "false", "--dashboard-port", str(dash)]
            if _has_ray_client():  # ray[client] listens on a port of its own
                args += ["--ray-client-server-port", str(client)]
            self.address = f"127.0.0.1:{gcs}"
        else:
            args += ["--address", self.address]
        log = open(os.path.join(self.dir, f"start-{i}.log"), "wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self._env(), start_new_session=True)
        rc = p.wait(self.start_timeout)
        log.close()
        if rc != 0:
            with open(os.path.join(self.dir, f"start-{i}.log"), errors="replace") as f:
                text = f.read()[-3000:]
            self.sessions.append(p.pid)
            raise RuntimeError(f"`ray start` of node {i} failed ({rc}):\n{text}")
        self.sessions.append(p.pid)

    def start(self) -> LocalRayCluster:
        """Start the head and the other nodes (``ray start`` returns once its node has registered)."""
        try:
            for i in range(self.n):
                self._start_node(i)
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self) -> int:
        """Start one more node joining the cluster; returns its number."""
        i = len(self.sessions)
        self.num_cpus.append(self.num_cpus[-1])
        self.num_gpus.append(self.num_gpus[-1])
        self.resources.append(self.resources[-1])
        self._start_node(i)
        return i

    def alive_nodes(self) -> int:
        """How many nodes the cluster's control store counts alive (asked with the ``ray`` CLI's client)."""
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', _node_ip_address='127.0.0.1'); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        out = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                             env=self._env(), timeout=self.start_timeout)
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def wait_nodes(self, n: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            alive = self.alive_nodes()
            if alive >= n:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local Ray cluster has {alive} of {n} nodes alive after {self.start_timeout:g} s")
            time.sleep(0.5)

    def kill_node(self, i: int) -> None:
        """Kill every process of node ``i`` (its raylet, object store and workers) at once."""
        sid = self.sessions[i]
        if sid is None:
            return
        for pid in _session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.sessions[i] = None

    def stop(self) -> None:
        """Kill the cluster's processes (the other nodes first) and remove its temp dir."""
        for i in reversed(range(len(self.sessions))):
            self.kill_node(i)
        shutil.rmtree(self.dir, ignore_errors=True)
