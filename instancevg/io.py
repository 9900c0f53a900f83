"""Atomic file output: every file the toolchain writes appears whole or not at all."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Iterator

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system tells it (Linux /proc), else by the
    set-and-restore dance under a lock (os.umask is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path`` atomically, on
    error it is removed and ``path`` is left untouched.

    The file ends with the mode a plain ``open(path, "w")`` would create (0666 minus the umask); the
    temporary file stays private (0600) while it is being written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def unwritable_reason(path: str | os.PathLike, kind: str = "file") -> str | None:
    """Why ``path`` cannot be written, or None when it can: ``kind`` "file" (a file; missing folders above
    it would be created) or "folder" (a folder, created when missing, that files go into). Creates
    nothing: the nearest existing folder is probed with a temporary file, which is removed."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        return "is a folder; give a file name"
    if kind == "folder" and path.exists() and not path.is_dir():
        return "exists and is not a folder"
    existing = path if kind == "folder" else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot write in {existing}: not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-", suffix=".tmp"):
            pass
    except OSError as exc:
        return f"cannot write in {existing}: {exc.strerror or exc}"
    return None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    """JSON indented for reading, or (indent None) compact, for large annotation files."""
    separators = None if indent is not None else (",", ":")
    write_text_atomic(path, json.dumps(obj, indent=indent, separators=separators) + "\n")
