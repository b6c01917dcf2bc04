"""Shared fixtures."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest


class ChainState(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


@pytest.fixture
def chain_state() -> type:
    return ChainState


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    # the browser tests' solara server: a free port, so parallel test sessions never collide
    if hasattr(config.option, "solara_port"):
        config.option.solara_port = _free_port()
