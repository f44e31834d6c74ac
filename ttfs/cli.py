"""`ttfs`: one subcommand per job; each command group lives in its own `ttfs.cmd_*` module.

The command modules are imported statically (a broken one fails `ttfs` loudly instead of losing
its commands) and import numba, scipy, matplotlib, PySpice, dask and nir only inside the
commands that use them, so `ttfs --help` starts fast. The library reports through `logging`:
`main` shows the project's loggers' messages on stdout as plain lines, INFO and up, WARNING and
up with --quiet (`console_logging`).

`main` is the one boundary where failures become exit statuses:

- TtfsError (a config, data, checkpoint or simulation problem the user can fix): one line
  `ttfs CMD: error: ...`, exit 2.
- OSError (no permission, read-only or full disk, a path through a file, a folder where a file
  was expected, ...): one line naming the file and what to do, exit 2.
- A decoding error no loader turned into a TtfsError (UnicodeDecodeError, JSON, YAML, zip): one
  line naming the exception, exit 2. Loaders of files (infra.atomic_io.read_yaml / read_json /
  read_npz / read_jsonl) already name the file; this is the last resort.
- Ctrl-C (KeyboardInterrupt, also when numba's compiled code re-raises it as a SystemError
  whose cause is the KeyboardInterrupt): "interrupted; rerun ..." naming --resume where the
  command has it, exit 130 (128 + SIGINT, what a shell reports).
- A full disk or other error behind stdout (`> /dev/full`): one line naming standard output,
  exit 2. Started with stdout closed (`>&-`): output is discarded as Python does, exit status
  as if it were written.
- stdout closed by the reader (`ttfs eval RUN --json | head -c0`): nothing printed, exit 141
  (128 + SIGPIPE, what a shell reports for a program killed by the broken pipe, so `set -o
  pipefail` sees it), stdout pointed at /dev/null so Python's final flush cannot fail again
  (the recipe of Python's signal module documentation, "Note on SIGPIPE").

Anything else is a bug in the toolkit and keeps its traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import logging
import os
import sys
import zipfile

import yaml

from infra.errors import TtfsError
from ttfs import cmd_demo, cmd_energy, cmd_explore, cmd_hw, cmd_netlist, cmd_nir, cmd_presets, cmd_sweep, cmd_train

# Each defines register(subparsers, formatter).
COMMAND_MODULES = (cmd_train, cmd_sweep, cmd_hw, cmd_netlist, cmd_energy, cmd_explore, cmd_demo, cmd_nir, cmd_presets)
# The packages whose loggers (logging.getLogger(__name__) in each module) the command line shows.
LIBRARY_PACKAGES = ("infra", "training", "hwmodel", "netlists", "energy", "ttfs")

EXIT_ERROR, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141
_DECODE_ERRORS = (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError, zipfile.BadZipFile)
_OS_FIX = {
    errno.EACCES: "no permission; choose a location you can write to (or fix its permissions)",
    errno.EPERM: "choose a location you can write to",
    errno.EROFS: "the file system is read-only; choose a location on a writable disk",
    errno.ENOSPC: "the disk is full; free some space or choose a location on another disk",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another location",
    errno.ENOTDIR: "part of the path is a file, not a folder; choose a path under a folder",
    errno.EISDIR: "name a file, not a folder",
    errno.EEXIST: "something is in the way there; remove it or choose another path",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Help with each flag's default appended, except where there is none to show (None) or the
    help text already states it ("(default: installed location)"), so no default shows twice."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def version() -> str:
    """The package's version (infra.provenance, imported only when asked for)."""
    from infra.provenance import package_version
    return package_version()


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for (importlib.metadata costs time at every start)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"ttfs {version()}")
        parser.exit()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttfs", formatter_class=_Formatter,
        description="Train sparse-firing TTFS spiking networks, map them to analog crossbars, "
                    "simulate them in ngspice and report their energy.",
        epilog="Run 'ttfs COMMAND --help' for a command's options and an example.")
    parser.add_argument("--version", action=_VersionAction, help="print the package version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub, _Formatter)
    return parser


class _ConsoleHandler(logging.Handler):
    """A log record as its plain message on whatever sys.stdout is when it is emitted (tests and
    `ttfs demo` redirect it), as print did. An OSError writing it propagates like print's, to
    main's handler (a closed pipe or a full disk behind stdout), rather than to logging's stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stdout
        if stream is None:          # started with stdout closed (>&-): discarded, as print does
            return
        stream.write(self.format(record) + "\n")
        stream.flush()


_CONSOLE = _ConsoleHandler()


@contextlib.contextmanager
def console_logging(quiet: bool = False):
    """Show the project's log messages on stdout while the block runs: INFO and up, or WARNING and
    up when quiet. Nested use (`ttfs demo` runs commands through main) keeps one handler, and
    each block restores the levels and handlers it found."""
    loggers = [logging.getLogger(name) for name in LIBRARY_PACKAGES]
    saved = [(logger, logger.level, _CONSOLE in logger.handlers) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
        if _CONSOLE not in logger.handlers:
            logger.addHandler(_CONSOLE)
    try:
        yield
    finally:
        for logger, level, had in saved:
            logger.setLevel(level)
            if not had:
                logger.removeHandler(_CONSOLE)


def _chain(exc: BaseException):
    """`exc` and every exception it was raised from or during."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_interrupt(exc: BaseException) -> bool:
    return any(isinstance(e, KeyboardInterrupt) for e in _chain(exc))


STDOUT = "standard output"


class _NamedStdout:
    """sys.stdout for the life of a command: an OSError from writing it names it (print's own
    errors carry no file name), so the handler can tell a closed pipe or a full disk behind stdout
    from any other OS error."""

    def __init__(self, stream):
        self._stream = stream

    def _call(self, name, *a):
        try:
            return getattr(self._stream, name)(*a)
        except OSError as exc:
            exc.filename = STDOUT if exc.filename is None else exc.filename
            raise

    def write(self, text):
        return self._call("write", text)

    def flush(self):
        return self._call("flush")

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null so Python's flush at exit cannot fail a second time (the recipe of
    the signal module's documentation, "Note on SIGPIPE")."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):   # not a real file (tests)
        pass


def os_error_message(exc: OSError) -> str:
    """One line: the file (the destination of a rename), what went wrong and how to fix it."""
    name = exc.filename2 if exc.filename2 is not None else exc.filename
    what = exc.strerror or str(exc) or type(exc).__name__
    fix = _OS_FIX.get(exc.errno, "check the path and the disk")
    if exc.errno == errno.EEXIST and name is not None and os.path.isfile(name):   # mkdir of a file's name
        fix = "it is a file where a folder is needed; choose a path under a folder"
    return f"{name}: {what}; {fix}" if name is not None else f"{what}; {fix}"


def _interrupted_message(args) -> str:
    if hasattr(args, "resume"):
        return "interrupted; rerun with --resume to continue from the last completed epoch"
    return "interrupted; rerun the same command to continue (finished work is kept)"


def _report(exc: BaseException, args) -> int | None:
    """Print the one line for a failure the user can act on and return its exit status; None: a bug."""
    prefix = f"ttfs {args.command}: "
    if _is_interrupt(exc):
        print(prefix + _interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, TtfsError):
        print(f"{prefix}error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, OSError):
        if exc.filename == STDOUT:
            _discard_stdout()
            if isinstance(exc, BrokenPipeError):        # the reader has gone: nothing to tell it
                return EXIT_BROKEN_PIPE
        print(f"{prefix}error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, _DECODE_ERRORS):
        print(f"{prefix}error: a file could not be decoded ({type(exc).__name__}: {' '.join(str(exc).split())}); "
              "it is corrupt: regenerate it (and please report the command: its reader should name the file)",
              file=sys.stderr)
        return EXIT_ERROR
    return None


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    stdout = sys.stdout
    if stdout is not None:          # None: started with stdout closed (>&-); Python discards prints
        sys.stdout = _NamedStdout(stdout)
    try:
        with console_logging(getattr(args, "quiet", False)):
            code = int(args.func(args) or 0)
        if stdout is not None:
            sys.stdout.flush()      # here, inside the handler, not at interpreter exit
        return code
    except BaseException as exc:
        status = _report(exc, args)
        if status is None:
            raise
        return status
    finally:
        if isinstance(sys.stdout, _NamedStdout):
            sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
