"""Warnings for the person at the terminal: one plain line on stderr (``warning: ...``), without the
source line Python's ``warnings`` module prints, each at most once per process.

They go through the logger ``instancevg`` (silence them with
``logging.getLogger("instancevg").setLevel(logging.ERROR)``), which writes to the ``sys.stderr`` of the
moment and does not propagate to the root logger, so a run prints each line once.
"""
from __future__ import annotations

import logging
import sys
import threading
from typing import Hashable

LOGGER = logging.getLogger("instancevg")
_LOCK = threading.Lock()
_SEEN: set = set()
_GROUP_COUNTS: dict = {}


class _CurrentStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when the record is emitted (redirections, test capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # never let a warning break a run
            self.handleError(record)


if not any(isinstance(h, _CurrentStderr) for h in LOGGER.handlers):
    _handler = _CurrentStderr()
    _handler.setFormatter(logging.Formatter("warning: %(message)s"))
    LOGGER.addHandler(_handler)
    LOGGER.propagate = False


def warn_once(key: Hashable, message: str, group: Hashable | None = None, limit: int | None = None,
              after_limit: str = "further warnings of this kind are not shown") -> bool:
    """Print ``message`` unless ``key`` was already reported in this process; returns whether it printed.

    ``group`` / ``limit``: at most ``limit`` distinct keys of ``group`` are reported; the next one prints
    ``after_limit`` instead, later ones nothing.
    """
    with _LOCK:
        if key in _SEEN:
            return False
        _SEEN.add(key)
        if group is not None and limit is not None:
            count = _GROUP_COUNTS[group] = _GROUP_COUNTS.get(group, 0) + 1
            if count > limit + 1:
                return False
            if count == limit + 1:
                message = after_limit
    LOGGER.warning(message)
    return True


def reset() -> None:
    """Forget what was reported (a new run in the same process, tests)."""
    with _LOCK:
        _SEEN.clear()
        _GROUP_COUNTS.clear()
