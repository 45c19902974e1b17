"""Ctrl-C and SIGTERM, raised as KeyboardInterrupt only where it is safe. Raised inside an MLflow
write, the interrupt can land in SQLAlchemy while it holds a lock (a weakref callback of its
event registry), and ending the runs afterwards then waits on that lock forever. So a signal that
arrives inside `deferred()` is held until the block ends."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_depth = 0  # how many deferred() blocks are open
_pending = False  # a signal arrived inside one


def install() -> None:
    """Ctrl-C and SIGTERM (how DVC and schedulers stop a stage) both raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _depth:
        _pending = True
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold an interrupt that arrives inside the block; raise it when the block ends normally."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if not _depth and _pending:
        _pending = False
        raise KeyboardInterrupt


def deferring(function: Callable[P, R]) -> Callable[P, R]:
    """`function` with deferred() around every call."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with deferred():
            return function(*args, **kwargs)

    return wrapper
