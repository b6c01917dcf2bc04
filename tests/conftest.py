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
