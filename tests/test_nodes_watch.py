"""FileTrigger: one run per new or changed file, with real files in a temp directory."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("watchfiles")

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import TriggerError
from agentgraph_nb.nodes import FileTrigger, read_text


def settle(t: FileTrigger, n: int, quiet: float = 0.6) -> None:
    assert t.wait(n, timeout=15), t.stats
    time.sleep(quiet)  # nothing more arrives


def test_one_run_per_new_or_changed_matching_file_with_its_relative_path(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "old.csv").write_text("old")
    # the run reads the file with a file node confined to the same directory
    app = (StateGraph(dict).add_node("read", read_text("{path}", base_dir=inbox, into="text"))
           .add_edge(START, "read").compile())
    with FileTrigger(app, inbox, "*.csv", debounce=0.05) as t:
        (inbox / "a.csv").write_text("alpha")
        (inbox / "sub" / "b.csv").write_text("beta")
        (inbox / "ignored.txt").write_text("no")
        settle(t, 2)
        (inbox / "a.csv").write_text("alpha 2")
        settle(t, 3)
    got = sorted((out["path"], out["change"], out["text"]) for _, out in t.results)
    assert got == [("a.csv", "added", "alpha"), ("a.csv", "modified", "alpha 2"), ("sub/b.csv", "added", "beta")]
    assert t.stats["events"] == 3 and t.stats["failed"] == 0 and not t.running
    ev = next(e for e, out in t.results if out["change"] == "modified")
    assert app.get_state(f"file:{ev.id}").values["text"] == "alpha 2"  # a thread per change


def test_initial_runs_existing_files_and_a_failed_run_is_retried(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    calls: list[str] = []
    lock = threading.Lock()

    def work(state: dict[str, Any]) -> dict[str, Any]:
        with lock:
            calls.append(state["path"])
            if calls.count(state["path"]) == 1:
                raise OSError("busy")
        return {"done": True}

    app = StateGraph(dict).add_node("work", work).add_edge(START, "work").compile()
    with FileTrigger(app, tmp_path, "*.json", initial=True, retry_delay=0.05, debounce=0.05) as t:
        settle(t, 1)
    assert calls == ["x.json", "x.json"] and t.stats["retried"] == 1 and t.stats["succeeded"] == 1


def test_deleted_files_and_symlinks_out_of_the_directory(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    (base / "gone.txt").write_text("g")
    seen: list[tuple[str, str]] = []
    app = StateGraph(dict).add_node("n", lambda s: None).add_edge(START, "n").compile(checkpointer=None)
    with FileTrigger(app, base, changes=("deleted", "added"), debounce=0.05,
                     on_result=lambda ev, out: seen.append((out["path"], out["change"]))) as t:
        os.symlink(outside, base / "link.txt")  # resolves outside base: ignored
        (base / "gone.txt").unlink()
        settle(t, 1)
    assert seen == [("gone.txt", "deleted")]


def test_bad_directory_and_arguments_and_a_prompt_stop(tmp_path: Path) -> None:
    app = StateGraph(dict).add_node("n", lambda s: None).add_edge(START, "n").compile()
    with pytest.raises(TriggerError, match="is not a directory"):
        FileTrigger(app, tmp_path / "missing").start()
    with pytest.raises(ValueError, match="changes must be"):
        FileTrigger(app, tmp_path, changes=("renamed",))
    t = FileTrigger(app, tmp_path).start()
    with pytest.raises(TriggerError, match="already running"):
        t.start()
    t0 = time.monotonic()
    t.stop()
    assert time.monotonic() - t0 < 3 and not t.running
    with pytest.raises(TypeError, match="give a compiled graph"):
        FileTrigger(object(), tmp_path)
