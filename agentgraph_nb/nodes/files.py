"""File nodes: read and write text, JSON, CSV and Parquet, glob and list directories, all
confined to a base directory. Standard library only (Parquet needs pandas and pyarrow: extra
``parquet``).

Example:
    >>> from agentgraph_nb.nodes.files import read_json, write_json
    >>> load = read_json("cities/{city}.json", base_dir="data", into="city_info")
    >>> save = write_json("reports/{city}.json", base_dir="out", key="report")

Paths are templates filled from the state (``{city}``) and always relative to ``base_dir``. A path
that would leave it, through ``..``, an absolute path, or a symlink pointing outside, is a
:class:`~agentgraph_nb.errors.PathEscapeError` naming the node and the path; nothing is read or
written. Writes go to a temporary file first and replace the target in one step, so a failed
write never leaves half a file. A missing file or another OS error is a
:class:`~agentgraph_nb.errors.NodeResourceError`; malformed JSON or CSV a
:class:`~agentgraph_nb.errors.NodeValueError`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from agentgraph_nb.errors import (
    MissingDependencyError,
    NodeResourceError,
    NodeValueError,
    PathEscapeError,
)
from agentgraph_nb.nodes._base import LibraryNode, Template, get_path, node_name

__all__ = [
    "FileNode",
    "delete_file",
    "glob_files",
    "list_dir",
    "read_csv",
    "read_json",
    "read_parquet",
    "read_text",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_text",
]


class FileNode(LibraryNode):
    """A node that reads or writes below ``base_dir``; made by the factories of this module."""

    def __init__(
        self,
        kind: str,
        path: str,
        *,
        base_dir: str | os.PathLike[str],
        action: Callable[[FileNode, Path, Any], Any],
        into: str | None = None,
        key: str | None = None,
        name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name)
        self.kind = kind
        if not isinstance(path, str) or not path:
            raise ValueError(f"{kind}: path must be a non-empty string, got {path!r}")
        self.path = Template(path)
        self.base_dir = Path(base_dir).expanduser().resolve()
        self.into = into
        self.key = key
        self.options = options
        self._action = action

    def path_for(self, state: Any, *, pattern: bool = False) -> Path:
        """The absolute path for this state, checked to stay inside ``base_dir``.

        Raises:
            PathEscapeError: the path leaves ``base_dir`` (``..``, absolute, symlink).
        """
        rel = self.path.render(state, who=self.who)
        base = self.base_dir
        if "\0" in rel:
            self._escape(rel, "contains a NUL character")
        pure = PurePath(rel)
        if pure.is_absolute() or rel.startswith(("~", "\\")) or pure.drive:
            self._escape(rel, "is absolute; give a path relative to base_dir")
        if pattern:
            if ".." in pure.parts:
                self._escape(rel, "goes up with '..'")
            return base / pure
        target = (base / pure).resolve()
        if target != base and not target.is_relative_to(base):
            why = "goes up with '..'" if ".." in pure.parts else "leads through a symlink to outside"
            self._escape(rel, f"{why} ({target})")
        return target

    def _escape(self, rel: str, why: str) -> None:
        name = node_name(self.who)
        raise PathEscapeError(
            f"node {name!r}: path {rel!r} {why}: it must stay inside base_dir {str(self.base_dir)!r}",
            node=name,
            resource=rel,
            path=rel,
            base_dir=str(self.base_dir),
        )

    def _os_error(self, path: Path, exc: OSError, verb: str) -> NodeResourceError:
        name = node_name(self.who)
        rel = os.path.relpath(path, self.base_dir)
        return NodeResourceError(
            f"node {name!r}: cannot {verb} {rel!r} in {str(self.base_dir)!r}: {exc.strerror or exc}",
            node=name,
            resource=rel,
            path=rel,
        )

    def _bad(self, path: Path, what: str) -> NodeValueError:
        name = node_name(self.who)
        rel = os.path.relpath(path, self.base_dir)
        return NodeValueError(f"node {name!r}: {rel!r}: {what}", node=name, resource=rel, path=rel)

    def value(self, state: Any) -> Any:
        """What a write node writes: the state key ``key``."""
        assert self.key is not None
        return get_path(state, self.key, who=self.who)

    def __call__(self, state: Any) -> dict[str, Any] | None:
        path = self.path_for(state, pattern=self.kind == "glob_files")
        out = self._action(self, path, state)
        return None if self.into is None else {self.into: out}


# -- atomic write ---------------------------------------------------------------------------------


def _write_bytes(node: FileNode, path: Path, data: bytes, *, append: bool = False) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            with open(path, "ab") as f:
                f.write(data)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise node._os_error(path, exc, "write") from exc


def _read_bytes(node: FileNode, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise node._os_error(path, exc, "read") from exc


def _decode(node: FileNode, path: Path, data: bytes) -> str:
    enc = node.options.get("encoding", "utf-8")
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        raise node._bad(path, f"is not {enc} text ({exc.reason} at byte {exc.start})") from None


def _rel(node: FileNode, path: Path) -> str:
    return os.path.relpath(path, node.base_dir)


# -- actions --------------------------------------------------------------------------------------


def _read_text(node: FileNode, path: Path, state: Any) -> str:
    return _decode(node, path, _read_bytes(node, path))


def _write_text(node: FileNode, path: Path, state: Any) -> str:
    value = node.value(state)
    if not isinstance(value, str):
        raise node._bad(path, f"state key {node.key!r} holds a {type(value).__name__}, not text")
    _write_bytes(node, path, value.encode(node.options.get("encoding", "utf-8")), append=node.options.get("append", False))
    return _rel(node, path)


def _read_json(node: FileNode, path: Path, state: Any) -> Any:
    text = _decode(node, path, _read_bytes(node, path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise node._bad(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _write_json(node: FileNode, path: Path, state: Any) -> str:
    value = node.value(state)
    try:
        text = json.dumps(value, indent=node.options.get("indent", 2), ensure_ascii=False, default=None)
    except (TypeError, ValueError) as exc:
        raise node._bad(path, f"state key {node.key!r} cannot be written as JSON: {exc}") from None
    _write_bytes(node, path, (text + "\n").encode("utf-8"))
    return _rel(node, path)


def _read_csv(node: FileNode, path: Path, state: Any) -> list[dict[str, str]]:
    text = _decode(node, path, _read_bytes(node, path))
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=node.options.get("delimiter", ",")))
    except csv.Error as exc:
        raise node._bad(path, f"malformed CSV: {exc}") from None
    for i, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise node._bad(path, f"malformed CSV: line {i} has {'more' if None in row else 'fewer'} fields than the header")
    return rows


def _write_csv(node: FileNode, path: Path, state: Any) -> str:
    rows = node.value(state)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise node._bad(path, f"state key {node.key!r} must hold a list of dicts (one per row) to write CSV")
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields, delimiter=node.options.get("delimiter", ","))
    w.writeheader()
    w.writerows(rows)
    _write_bytes(node, path, buf.getvalue().encode("utf-8"))
    return _rel(node, path)


def _pandas(what: str) -> Any:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(["pandas", "pyarrow"], "parquet", what) from exc
    return pd


def _read_parquet(node: FileNode, path: Path, state: Any) -> Any:
    pd = _pandas(node.kind)
    if not path.is_file():
        raise node._os_error(path, FileNotFoundError(2, "No such file"), "read")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise node._bad(path, f"cannot be read as Parquet: {exc}") from None
    return df if node.options.get("as_frame") else df.to_dict(orient="records")


def _write_parquet(node: FileNode, path: Path, state: Any) -> str:
    pd = _pandas(node.kind)
    value = node.value(state)
    df = value if isinstance(value, pd.DataFrame) else pd.DataFrame(value)
    buf = io.BytesIO()
    try:
        df.to_parquet(buf, index=False)
    except Exception as exc:
        raise node._bad(path, f"state key {node.key!r} cannot be written as Parquet: {exc}") from None
    _write_bytes(node, path, buf.getvalue())
    return _rel(node, path)


def _glob(node: FileNode, path: Path, state: Any) -> list[str]:
    base = node.base_dir
    pattern = os.path.relpath(path, base)
    out = []
    try:
        for p in sorted(base.glob(pattern)):
            real = p.resolve()
            if real == base or real.is_relative_to(base):  # symlinks leading out are left out
                out.append(p.relative_to(base).as_posix())
    except (OSError, ValueError) as exc:
        raise node._bad(path, f"bad glob pattern: {exc}") from None
    return out


def _list_dir(node: FileNode, path: Path, state: Any) -> list[dict[str, Any]]:
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise node._os_error(path, exc, "list") from exc
    out = []
    for e in entries:
        real = Path(e.path).resolve()
        if real != node.base_dir and not real.is_relative_to(node.base_dir):
            continue
        is_dir = e.is_dir()
        out.append({"name": e.name, "is_dir": is_dir, "size": None if is_dir else e.stat().st_size})
    return out


def _delete(node: FileNode, path: Path, state: Any) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        if node.options.get("missing_ok"):
            return False
        raise node._os_error(path, FileNotFoundError(2, "No such file"), "delete") from None
    except OSError as exc:
        raise node._os_error(path, exc, "delete") from exc
    return True


# -- factories ------------------------------------------------------------------------------------

def read_text(path: str, *, base_dir: str | os.PathLike[str], into: str, encoding: str = "utf-8", name: str | None = None) -> FileNode:
    """A node that reads a text file into ``into``.

    Example:
        >>> read_text("notes/{day}.md", base_dir="journal", into="notes")  # doctest: +SKIP
    """
    return FileNode("read_text", path, base_dir=base_dir, action=_read_text, into=into, encoding=encoding, name=name)


def write_text(
    path: str, *, base_dir: str | os.PathLike[str], key: str, into: str | None = None, encoding: str = "utf-8",
    append: bool = False, name: str | None = None,
) -> FileNode:
    """A node that writes the text in state key ``key`` (``into``: a key for the path written).

    Example:
        >>> write_text("out/{city}.txt", base_dir=".", key="summary")  # doctest: +SKIP
    """
    return FileNode("write_text", path, base_dir=base_dir, action=_write_text, key=key, into=into,
                    encoding=encoding, append=append, name=name)


def read_json(path: str, *, base_dir: str | os.PathLike[str], into: str, name: str | None = None) -> FileNode:
    """A node that reads a JSON file into ``into``."""
    return FileNode("read_json", path, base_dir=base_dir, action=_read_json, into=into, name=name)


def write_json(
    path: str, *, base_dir: str | os.PathLike[str], key: str, into: str | None = None, indent: int | None = 2,
    name: str | None = None,
) -> FileNode:
    """A node that writes state key ``key`` as JSON."""
    return FileNode("write_json", path, base_dir=base_dir, action=_write_json, key=key, into=into, indent=indent, name=name)


def read_csv(path: str, *, base_dir: str | os.PathLike[str], into: str, delimiter: str = ",", name: str | None = None) -> FileNode:
    """A node that reads a CSV file (with a header row) into ``into`` as a list of dicts."""
    return FileNode("read_csv", path, base_dir=base_dir, action=_read_csv, into=into, delimiter=delimiter, name=name)


def write_csv(
    path: str, *, base_dir: str | os.PathLike[str], key: str, into: str | None = None, delimiter: str = ",",
    name: str | None = None,
) -> FileNode:
    """A node that writes state key ``key`` (a list of dicts) as CSV with a header row."""
    return FileNode("write_csv", path, base_dir=base_dir, action=_write_csv, key=key, into=into, delimiter=delimiter, name=name)


def read_parquet(
    path: str, *, base_dir: str | os.PathLike[str], into: str, as_frame: bool = False, name: str | None = None
) -> FileNode:
    """A node that reads a Parquet file into ``into`` (a list of dicts, or a DataFrame with
    ``as_frame=True``). Needs pandas and pyarrow (extra ``parquet``)."""
    return FileNode("read_parquet", path, base_dir=base_dir, action=_read_parquet, into=into, as_frame=as_frame, name=name)


def write_parquet(
    path: str, *, base_dir: str | os.PathLike[str], key: str, into: str | None = None, name: str | None = None
) -> FileNode:
    """A node that writes state key ``key`` (a list of dicts or a DataFrame) as Parquet."""
    return FileNode("write_parquet", path, base_dir=base_dir, action=_write_parquet, key=key, into=into, name=name)


def glob_files(pattern: str, *, base_dir: str | os.PathLike[str], into: str, name: str | None = None) -> FileNode:
    """A node that puts the paths (relative to ``base_dir``, sorted) matching a glob pattern into
    ``into``; ``**`` matches any depth. Entries that are symlinks leading outside are left out.

    Example:
        >>> glob_files("inbox/**/*.json", base_dir="data", into="files")  # doctest: +SKIP
    """
    return FileNode("glob_files", pattern, base_dir=base_dir, action=_glob, into=into, name=name)


def list_dir(path: str = ".", *, base_dir: str | os.PathLike[str], into: str, name: str | None = None) -> FileNode:
    """A node that lists a directory: ``[{"name", "is_dir", "size"}, ...]`` sorted by name."""
    return FileNode("list_dir", path, base_dir=base_dir, action=_list_dir, into=into, name=name)


def delete_file(
    path: str, *, base_dir: str | os.PathLike[str], missing_ok: bool = False, into: str | None = None,
    name: str | None = None,
) -> FileNode:
    """A node that deletes a file (``into``: a key for whether it existed)."""
    return FileNode("delete_file", path, base_dir=base_dir, action=_delete, into=into, missing_ok=missing_ok, name=name)
