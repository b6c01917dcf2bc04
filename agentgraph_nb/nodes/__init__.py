"""The node library: ready nodes for HTTP, SQL, files, Redis, queues and small utilities, and
triggers that start runs (queue consumers, a file watcher, a webhook receiver).

Each is a factory returning a node, usable in Python and by name in ``%%agentgraph`` cells (bind
the node to a name in the notebook: ``weather = http_get(...)``, then ``START -> weather``)::

    from agentgraph_nb.nodes import http_get, sql_query, read_json, transform

    g.add_node("weather", http_get("https://api.example.com/weather/{city}", into="weather"))
    g.add_node("users", sql_query("SELECT name FROM users WHERE city = :city", url="sqlite:///app.db", into="users"))
    g.add_node("config", read_json("{city}.json", base_dir="configs", into="config"))
    g.add_node("total", transform("price * quantity", into="total"))

Each family sits in its own module behind its own extra, imported on first use:

==================  =================================================  ==========================
module              nodes                                              extra
==================  =================================================  ==========================
``nodes.http``      ``http_request``, ``http_get``, ``http_post``      ``agentgraph_nb[http]``
``nodes.sql``       ``sql_query``, ``sql_execute``                     ``agentgraph_nb[sql]``
``nodes.files``     ``read_text``, ``write_json``, ``glob_files``, ...  none (Parquet: ``[parquet]``)
``nodes.util``      ``validate``, ``transform``, ``template``          ``agentgraph_nb[util]``
``nodes.nosql``     ``redis_get``, ``redis_set``, ``redis_hget``, ...  ``agentgraph_nb[redis]``
``nodes.streams``   ``stream_add``, ``stream_read``, ``StreamTrigger``  ``agentgraph_nb[redis]``
``nodes.rabbitmq``  ``rabbitmq_publish``, ``rabbitmq_get``, ...        ``agentgraph_nb[rabbitmq]``
``nodes.kafka``     ``kafka_send``, ``kafka_read``, ``KafkaTrigger``    ``agentgraph_nb[kafka]``
``nodes.watch``     ``FileTrigger``                                    ``agentgraph_nb[watch]``
``nodes.webhook``   ``WebhookReceiver``                                none (standard library)
==================  =================================================  ==========================

Errors name the node and the resource (:class:`~agentgraph_nb.errors.NodeResourceError` and its
subclasses). ``app.close()`` closes the connections the graph's nodes hold.

The triggers (``StreamTrigger``, ``RabbitMQTrigger``, ``KafkaTrigger``, ``FileTrigger``) run a
compiled graph once per event and share one shape (:class:`~agentgraph_nb.nodes._trigger.Trigger`):
``start()``/``stop()`` or ``with``, ``await serve()``, ``wait(n)``, ``stats``, ``results``,
``failures``, ``on_result``/``on_error``; ``WebhookReceiver`` has the same lifecycle.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "api_key",
    "basic",
    "bearer",
    "delete_file",
    "FileTrigger",
    "glob_files",
    "KafkaTrigger",
    "kafka_read",
    "kafka_send",
    "http_get",
    "http_post",
    "http_request",
    "list_dir",
    "next_link",
    "oauth2_client_credentials",
    "page_param",
    "read_csv",
    "read_json",
    "read_parquet",
    "RabbitMQTrigger",
    "rabbitmq_get",
    "rabbitmq_publish",
    "read_text",
    "redis_get",
    "redis_hget",
    "redis_hset",
    "redis_set",
    "sql_execute",
    "stream_add",
    "stream_read",
    "StreamTrigger",
    "sql_query",
    "template",
    "transform",
    "validate",
    "WebhookReceiver",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_text",
]

_MODULE = {
    **dict.fromkeys(
        ["api_key", "basic", "bearer", "http_get", "http_post", "http_request", "next_link",
         "oauth2_client_credentials", "page_param"], "http"),
    **dict.fromkeys(["sql_execute", "sql_query"], "sql"),
    **dict.fromkeys(
        ["delete_file", "glob_files", "list_dir", "read_csv", "read_json", "read_parquet", "read_text",
         "write_csv", "write_json", "write_parquet", "write_text"], "files"),
    **dict.fromkeys(["template", "transform", "validate"], "util"),
    **dict.fromkeys(["redis_get", "redis_hget", "redis_hset", "redis_set"], "nosql"),
    **dict.fromkeys(["StreamTrigger", "stream_add", "stream_read"], "streams"),
    **dict.fromkeys(["RabbitMQTrigger", "rabbitmq_get", "rabbitmq_publish"], "rabbitmq"),
    **dict.fromkeys(["KafkaTrigger", "kafka_read", "kafka_send"], "kafka"),
    "FileTrigger": "watch",
    "WebhookReceiver": "webhook",
}


def __getattr__(name: str) -> Any:
    mod = _MODULE.get(name)
    if mod is None:
        raise AttributeError(f"module 'agentgraph_nb.nodes' has no attribute {name!r}")
    from agentgraph_nb._lazy import requires_extra

    with requires_extra(f"agentgraph_nb.nodes.{name}"):
        value = getattr(importlib.import_module(f"agentgraph_nb.nodes.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
