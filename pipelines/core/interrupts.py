"""Ctrl-C and SIGTERM, raised as KeyboardInterrupt only at safe points.

A KeyboardInterrupt raised wherever the signal happens to arrive can land inside SQLAlchemy (under
MLflow) while it holds a lock: a weakref callback of its event registry, which garbage collection
runs in the middle of any code, training included. Ending the runs afterwards then waits on that
lock forever. So the handler only notes the signal, and the long loops call check() between their
steps (a training step, a pruning fraction, a wait for a Ray shard), where nothing holds a lock.
A second signal before the first is raised stops at once: a user pressing Ctrl-C again means it.
"""

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
_pending = 0  # signals noted and not yet raised


def install() -> None:
    """Ctrl-C and SIGTERM (how DVC and schedulers stop a stage) both raise KeyboardInterrupt, at
    the next check()."""
    global _pending
    _pending = 0
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending += 1
    if _pending > 1 and not _depth:
        _pending = 0
        raise KeyboardInterrupt


def check() -> None:
    """A safe point: raise the interrupt noted since the last one (not inside deferred())."""
    global _pending
    if _pending and not _depth:
        _pending = 0
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold even a second interrupt inside the block (an MLflow write); its end is a safe point."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    check()


def deferring(function: Callable[P, R]) -> Callable[P, R]:
    """`function` with deferred() around every call."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with deferred():
            return function(*args, **kwargs)

    return wrapper
