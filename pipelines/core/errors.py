"""The errors a stage reports as one line, and the wrapper that turns them into exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

INTERRUPTED_EXIT_CODE = 130  # the shell's code for a process stopped by SIGINT


class RegbenchError(Exception):
    """A problem the user can fix (bad input, missing data); reported as one line, exit 1."""

    exit_code = 1


class ParamsError(RegbenchError):
    """params.yaml is wrong: the message names the key path, the value found and what is allowed."""

    exit_code = 2


class DataError(RegbenchError):
    """A data file is missing, truncated, corrupt or does not match its checksum."""


def stage(main: Callable[..., None]) -> Callable[..., None]:
    """Run a stage's main(); a RegbenchError becomes one line on stderr and a non-zero exit, and so does
    an interrupt (Ctrl-C, or SIGTERM where the stage raises it as one): a traceback of wherever the
    stage happened to be would tell the user nothing."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            main(*args, **kwargs)
        except RegbenchError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            print("error: interrupted (Ctrl-C or SIGTERM)", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)

    return wrapper
