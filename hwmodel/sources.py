"""What a folder given on the command line is: a run (training/), a design (hwmodel/), or a sweep.

Told from file names only, so it is cheap and reads nothing: a run holds model.yaml and a design
design.yaml, the file each writer writes last (training.checkpoint.save_model,
hwmodel.design.save_design), so a folder being written is recognised only once it is complete, and
a folder missing its .npz is still recognised and its loader names the missing file. A sweep
(`ttfs sweep`) holds run or design folders, or its trade-off table. docs/design-format.md.
"""
from __future__ import annotations

from pathlib import Path

from infra.errors import CheckpointError

KINDS = ("run", "design", "sweep")
RUN_FILE = "model.yaml"
DESIGN_FILE = "design.yaml"
_WHAT = {"run": (f"a run folder ({RUN_FILE})", "'ttfs train'"),       # kind -> (what it holds, its writer)
         "design": (f"a design folder ({DESIGN_FILE})", "'ttfs map'"),
         "sweep": ("a sweep folder (run or design folders, or tradeoff.csv)", "'ttfs sweep'")}


def is_run(path) -> bool:
    return (Path(path) / RUN_FILE).is_file()


def is_design(path) -> bool:
    return (Path(path) / DESIGN_FILE).is_file()


def folder_kind(path) -> str | None:
    """"design", "run" or "sweep" (checked in that order), or None for anything else."""
    path = Path(path)
    if is_design(path):
        return "design"
    if is_run(path):
        return "run"
    if not path.is_dir():
        return None
    if any(q.is_dir() and (is_run(q) or is_design(q)) for q in path.iterdir()):
        return "sweep"
    from training.sweep import CSV_NAME      # here: training.sweep imports the trainer
    return "sweep" if (path / CSV_NAME).is_file() else None


def expect_kind(path, kinds: tuple[str, ...], fix: str = "") -> str:
    """The kind of `path` if it is one of `kinds`, else a CheckpointError naming the folder, what
    each accepted kind holds, and `fix` (default: the commands that write them)."""
    kind = folder_kind(path)
    if kind in kinds:
        return kind
    what = [_WHAT[k][0] for k in kinds]
    writers = [_WHAT[k][1] for k in kinds]
    fix = fix or "pass a folder written by " + " or ".join(filter(None, (", ".join(writers[:-1]), writers[-1])))
    if not Path(path).is_dir():
        raise CheckpointError(f"{path}: no such folder; {fix}")
    if len(what) == 1:
        raise CheckpointError(f"{path}: not {what[0]}; {fix}")
    raise CheckpointError(f"{path}: neither {', '.join(what[:-1])} nor {what[-1]}; {fix}")
