"""What gradflow's command-line scripts share (the demo, the examples, the benchmarks): the
help layout and the folder their outputs go to.

Every script writes its PNG and JSON files into one folder, ``--out DIR``, by default
``runs/<name>/`` under the current folder (never into the package or the repository's
source folders), and prints the path of each file it writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional, Union

RUNS = "runs"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (but not None or False) and keeps the description laid out
    as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def default_out(name: str) -> str:
    """The default output folder of the script `name`: runs/<name>."""
    return f"{RUNS}/{name}"


def add_out_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """--out DIR, default runs/<name>: the folder for the script's PNG and JSON files."""
    parser.add_argument("--out", metavar="DIR", default=default_out(name),
                        help="folder for the figures and JSON results (created if missing)")


def out_path(out: Union[str, Path], filename: str) -> Path:
    """`out`/`filename`, creating the folder `out`."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / filename


def write_json(out: Union[str, Path], filename: str, data: Any,
               announce: Optional[str] = "results") -> Path:
    """Write `data` as indented JSON to `out`/`filename` and print where (unless `announce`
    is None); returns the path."""
    path = out_path(out, filename)
    path.write_text(json.dumps(data, indent=1, default=float) + "\n")
    if announce:
        print(f"{announce}: {path}")
    return path
