"""The errors a stage reports as one line, and the wrapper that turns them into exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class RegbenchError(Exception):
    """A problem the user can fix (bad input, missing data); reported as one line, exit 1."""

    exit_code = 1


class ParamsError(RegbenchError):
    """params.yaml is wrong: the message names the key path, the value found and what is allowed."""

    exit_code = 2


class DataError(RegbenchError):
    """A data file is missing, truncated, corrupt or does not match its checksum."""


def stage(main: Callable[..., None]) -> Callable[..., None]:
    """Run a stage's main(); a RegbenchError becomes one line on stderr and a non-zero exit."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            main(*args, **kwargs)
        except RegbenchError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)

    return wrapper
