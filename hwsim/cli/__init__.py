"""The `hwsim` command. It reads as the pipeline: export -> compile -> simulate -> report.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback, nothing written),
1 internal error (set HWSIM_DEBUG=1 for the traceback). Each command module builds its own
sub-parser and imports what it needs when it runs, so `hwsim simulate` never loads torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from .. import __version__
from ..errors import BadInput


class UsageError(BadInput):
    """A command-line argument that cannot be used (a missing input file, a bad --dim)."""


class _Parser(argparse.ArgumentParser):
    """argparse's errors as the bad-input contract wants them: one line, exit code 2 (argparse
    prints the usage first; `hwsim CMD --help` still shows it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import commands, explore, report, train

    ap = _Parser(prog="hwsim", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    commands.add_parsers(sub)
    train.add_parser(sub)
    explore.add_parsers(sub)
    report.add_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`hwsim ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - the one place errors become exit codes
        if _is_bad_input(e):
            print(f"hwsim {args.command}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        if os.environ.get("HWSIM_DEBUG"):
            traceback.print_exc()
        print(f"hwsim {args.command}: internal error: {e.__class__.__name__}: {_one_line(e)} "
              "(set HWSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _is_bad_input(e: BaseException) -> bool:
    return isinstance(e, BadInput)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:2000] + (" ..." if len(text) > 2000 else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
