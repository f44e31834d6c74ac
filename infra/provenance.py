"""What made a file: the toolkit's version and git commit, and the versions of the libraries that
shape its numbers. model.yaml, design.yaml, summary.json and report.json hold `provenance()`
under the key `provenance` (docs/design-format.md).

Nothing here fails: a missing package is None, and the git keys are left out when the package
is not a git checkout (an installed copy) or git is missing. Versions come from the installed
distributions' metadata, so nothing is imported for them (numba alone takes a second). ngspice's
version is known only once a process has loaded the library (netlists.ngspice reports it through
`record_version`); until then it is None: ngspice is never started for this.
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

KEY = "provenance"                 # the key the files hold it under
DISTRIBUTION = "ttfs-codesign"
LIBRARIES = ("numpy", "numba", "PySpice")
SOURCE = Path(__file__).resolve().parents[1]   # the folder holding the project's packages
_RECORDED = {"ngspice": None}      # versions learnt at run time (record_version)


def record_version(name: str, version) -> None:
    """Note a version learnt at run time (ngspice's, when its library is loaded)."""
    _RECORDED[name] = None if version is None else str(version)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def package_version() -> str:
    """The toolkit's version: the installed distribution's, else pyproject.toml's (a checkout run
    without installing)."""
    found = _version(DISTRIBUTION)
    if found is None:
        import tomllib
        with open(SOURCE / "pyproject.toml", "rb") as fh:
            found = tomllib.load(fh)["project"]["version"]
    return found


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True, text=True, timeout=10,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> dict:
    """{"git_commit": HEAD, "git_dirty": tracked files changed} of the checkout this package runs
    from; {} when it is not the top of a git work tree (e.g. installed into a virtual environment,
    also one inside a checkout) or git is missing."""
    top = _git("rev-parse", "--show-toplevel", "HEAD")
    lines = top.split() if top else []
    if len(lines) != 2 or Path(lines[0]).resolve() != SOURCE:
        return {}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": lines[1], "git_dirty": None if status is None else bool(status.strip())}


@functools.lru_cache(maxsize=None)
def _static() -> dict:
    return {DISTRIBUTION: package_version(), **git_state(), "python": platform.python_version(),
            **{name: _version(name) for name in LIBRARIES}}


def provenance() -> dict:
    """The toolkit's version, its git commit and dirty flag (checkouts only), and the versions of
    Python, numpy, numba, PySpice and ngspice (None where unknown). Computed once per process."""
    return {**_static(), **_RECORDED}


def strip(text: str) -> str:
    """YAML text without its top-level `provenance:` block: what a content fingerprint covers, so
    re-mapping the same design at another commit keeps its cached results (infra.fingerprint)."""
    lines, out, inside = text.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith(f"{KEY}:"):
            inside = True
            continue
        if inside and line[:1] in (" ", "\t", "-"):
            continue
        inside = False
        out.append(line)
    return "".join(out)
