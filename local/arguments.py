"""How the command line reads its arguments: a usage error is one line, numbers are checked.

argparse's own error is a usage block and a message; ours is the message on one line, like
every other error of ``sluice``, with the command whose ``--help`` shows the usage, and the
same exit code 2. A number out of its range is a usage error here, before any work starts.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

from local import output


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to find help) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``sluice: error: MESSAGE (see sluice COMMAND --help)`` and exit 2."""
        output.print_error(f"{message} (see {self.prog} --help)")
        sys.exit(2)


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, found {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, found {text!r}")
    return value
