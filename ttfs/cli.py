"""`ttfs`: one subcommand per job; each command group lives in its own `ttfs.cmd_*` module.

Errors the user can act on (TtfsError) print as one message and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from infra.errors import TtfsError

# Modules that each define register(subparsers); a missing one (feature not built yet) is skipped.
COMMAND_MODULES = ("ttfs.cmd_train", "ttfs.cmd_sweep", "ttfs.cmd_hw", "ttfs.cmd_netlist", "ttfs.cmd_energy", "ttfs.cmd_demo", "ttfs.cmd_nir")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttfs", formatter_class=_Formatter,
        description="Train sparse-firing TTFS spiking networks, map them to analog crossbars, "
                    "simulate them in ngspice and report their energy.",
        epilog="Run 'ttfs COMMAND --help' for a command's options and an example.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub, _Formatter)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except TtfsError as exc:
        print(f"ttfs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ttfs {args.command}: interrupted; rerun the same command (with --resume where it has one) "
              "to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
