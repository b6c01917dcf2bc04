"""The Redis, queue and trigger families sit behind their own extras: a missing one names the pip
install, and ``import agentgraph_nb.nodes`` imports none of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize(
    ("name", "blocked", "extra"),
    [
        ("redis_get", "redis", "redis"),
        ("StreamTrigger", "redis", "redis"),
        ("rabbitmq_publish", "aio_pika", "rabbitmq"),
        ("KafkaTrigger", "aiokafka", "kafka"),
        ("FileTrigger", "watchfiles", "watch"),
    ],
)
def test_missing_extra_names_the_pip_install(name: str, blocked: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from agentgraph_nb import MissingDependencyError\n"
        "try:\n"
        f"    from agentgraph_nb.nodes import {name}\n"
        "except MissingDependencyError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert f'pip install "agentgraph_nb[{extra}]"' in r.stdout and f"agentgraph_nb.nodes.{name}" in r.stdout, (
        r.stdout + r.stderr
    )


def test_the_webhook_needs_no_extra_and_nodes_import_stays_light() -> None:
    code = (
        "import sys, agentgraph_nb.nodes\n"
        "heavy = ('redis', 'aio_pika', 'aiokafka', 'watchfiles', 'http.server')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "for m in ('redis', 'aio_pika', 'aiokafka', 'watchfiles'): sys.modules[m] = None\n"
        "from agentgraph_nb.nodes import WebhookReceiver\n"
        "print(WebhookReceiver.__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["[]", "WebhookReceiver"], r.stdout + r.stderr
