"""Runs a Python program with a shorter interpreter switch interval:
`python _switch_interval.py SECONDS PROGRAM [ARG...]`.

The embedded store answers every connection on a thread of one interpreter. A thread deep
in a long scan keeps the interpreter lock for a whole switch interval (5 ms by default)
each time a thread with a short read asks for it back, so short reads crawl behind long
ones. The program is run by its path, as its console script would run it, and this file
is run by its path too, so that it needs nothing but the standard library.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> None:
    interval_s, program = float(sys.argv[1]), sys.argv[2]
    sys.setswitchinterval(interval_s)
    sys.argv = sys.argv[2:]
    sys.path[0] = str(Path(program).parent)  # as if the program had been run itself
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main()
