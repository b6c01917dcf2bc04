"""The README's node-library examples for triggers, Redis and queues run as pasted, against the
real servers of tests/_servers.py (the first example, HTTP/SQL/files, is tested in test_cli.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Node library\n")
    end = text.index("\n## ", start + 4)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def _run(code: str, cwd: Path, **env: str) -> str:
    (cwd / "example.py").write_text(code)
    e = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    r = subprocess.run([sys.executable, "example.py"], cwd=cwd, env=e, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Unclosed" not in r.stderr and "Task was destroyed" not in r.stderr, r.stderr  # clients closed at exit
    return r.stdout


def test_readme_triggers_and_webhook_example_runs_as_pasted(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    out = _run(_blocks()[1], tmp_path)
    assert out.splitlines() == [
        "{'id': 1, 'total': 42}",
        "interrupted {'question': 'refund 30?'}",
        "done {'amount': 30, 'approved': True}",
    ]


def test_readme_redis_and_queues_example_runs_as_pasted(
    tmp_path: Path, redis_server: Any, rabbitmq_server: Any, kafka_server: Any
) -> None:
    pytest.importorskip("aiokafka")
    out = _run(_blocks()[2], tmp_path, REDIS_URL=redis_server.url.replace("/0", "/3"), AMQP_URL=rabbitmq_server.url,
               KAFKA_URL=kafka_server.url)
    assert out.splitlines() == ["42", "StreamTrigger 42", "RabbitMQTrigger 42", "KafkaTrigger 42"]
