"""What a node may ask of a machine (``add_node(..., resources=...)``), checked when the graph is
built: no Ray import, so a graph with placements builds and runs locally without the extra."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agentgraph_nb.errors import GraphValidationError

__all__ = ["RESOURCE_KEYS", "check_resources", "ray_options"]

RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory", "resources")
"""The keys ``resources=`` takes (Ray's names): CPUs and GPUs (fractions allowed), memory in
bytes, and ``resources``: custom resources by name (``{"accelerator_type:A100": 1}``)."""


def _amount(node: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0 or (
            math.isinf(value)):
        raise GraphValidationError(
            f"node {node!r}: resources[{key!r}] must be a number >= 0, got {value!r}")
    return value


def check_resources(node: str, resources: Any) -> dict[str, Any]:
    """``resources`` checked and copied: a dict of :data:`RESOURCE_KEYS`, amounts >= 0."""
    if not isinstance(resources, Mapping):
        raise GraphValidationError(
            f"node {node!r}: resources= must be a dict such as {{'num_cpus': 2, 'num_gpus': 1}}, "
            f"got {type(resources).__name__} {resources!r}")
    out: dict[str, Any] = {}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            from agentgraph_nb.errors import did_you_mean

            raise GraphValidationError(
                f"node {node!r}: unknown resource {key!r}.{did_you_mean(str(key), RESOURCE_KEYS)} "
                f"resources= takes {', '.join(RESOURCE_KEYS)} (custom ones go in 'resources': {{name: amount}})")
        if key == "resources":
            if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
                raise GraphValidationError(
                    f"node {node!r}: resources['resources'] must map custom resource names to amounts, got {value!r}")
            out[key] = {k: _amount(node, f"resources.{k}", v) for k, v in value.items()}
        else:
            out[key] = _amount(node, key, value)
    return out


def ray_options(resources: dict[str, Any] | None) -> dict[str, Any]:
    """``resources`` as keyword arguments of Ray's ``.options()``."""
    if not resources:
        return {}
    out = {k: v for k, v in resources.items() if k != "resources"}
    if "memory" in out:
        out["memory"] = int(out["memory"])
    if resources.get("resources"):
        out["resources"] = dict(resources["resources"])
    return out
