"""What a folder given on the command line is: a run (training/), a design (hwmodel/), or a sweep.

Told from file names only, so it is cheap and reads nothing: a run holds model.yaml and a design
design.yaml, the file each writer writes last (training.checkpoint.save_model,
hwmodel.design.save_design), so a folder being written is recognised only once it is complete, and
a folder missing its .npz is still recognised and its loader names the missing file. A sweep
(`ttfs sweep`) holds run or design folders, or its trade-off table. docs/design-format.md.

`resolve_sources` turns the folders a command is given (runs, designs, sweeps) into the list of
inputs it evaluates on hardware, and `load_source` gives each one's design (a run mapped now).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra import atomic_io
from infra.errors import CheckpointError, ConfigError

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


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    kind: str          # run | design


def reg_of(meta: dict) -> dict:
    """A run's regularisers: the sparse-firing kind and strength (v_hat of the membrane loss) and the
    energy-aware term's strength (reg.energy_strength, 0 for runs from before it existed)."""
    reg = meta.get("reg") or {}
    return {"kind": reg.get("kind", "none"), "strength": float(reg.get("strength") or 0.0),
            "v_hat": reg.get("v_hat"), "energy_strength": float(reg.get("energy_strength") or 0.0)}


def read_mapping(p: Path) -> dict:
    """The mapping a YAML file holds, or {} if it is missing or damaged (load_source names that)."""
    try:
        data = atomic_io.read_yaml(p, CheckpointError)
    except (OSError, CheckpointError):
        return {}
    return data if isinstance(data, dict) else {}


def _in_progress(p: Path) -> bool:
    """A run whose config asks for more epochs than model.yaml says were completed (still training)."""
    if not is_run(p) or not (p / "config.yaml").is_file():
        return False
    want = (read_mapping(p / "config.yaml").get("train") or {}).get("epochs")
    done = read_mapping(p / "model.yaml").get("epochs_completed")
    return isinstance(want, int) and isinstance(done, int) and done < want


def _sweep_order(p: Path):
    meta = read_mapping(p / "model.yaml") if is_run(p) else {}
    reg = reg_of(meta)
    return (reg["kind"] != "none" or reg["energy_strength"] > 0, reg["kind"], reg["strength"],
            reg["energy_strength"], p.name)


def resolve_sources(paths) -> list[Source]:
    """Runs, designs and the runs/designs inside sweep folders, in the order given (a sweep's runs
    that are still training -- fewer epochs completed than configured -- are left out)."""
    out: list[Source] = []
    for raw in paths:
        p = Path(raw)
        kind = expect_kind(p, ("run", "design", "sweep"))
        if kind != "sweep":
            out.append(Source(p.name, p, kind))
            continue
        subs = sorted((q for q in p.iterdir() if folder_kind(q) in ("run", "design") and not _in_progress(q)),
                      key=_sweep_order)
        if not subs:
            raise CheckpointError(f"{p}: a sweep folder, but no run in it has finished training; wait for "
                                  "'ttfs sweep' or pass its finished runs")
        out += [Source(f"{p.name}/{q.name}", q, folder_kind(q)) for q in subs]
    names = [s.name for s in out]
    if len(set(names)) != len(names):   # same folder name twice: use the full paths
        out = [Source(str(s.path), s.path, s.kind) for s in out]
    return out


def source_run(design) -> Path | None:
    """The run folder a design was mapped from (design.source_run), or None if it names none or
    the folder is gone."""
    run = Path(design.source_run) if design.source_run else None
    return run if run is not None and run.is_dir() else None


def load_source(src: Source, hw):
    """(Design, meta): a design as stored, or a run mapped now with `hw` (a HardwareConfig)."""
    from hwmodel.design import load_design
    if src.kind == "design":
        design = load_design(src.path)
        run = source_run(design)
        meta = read_mapping(run / RUN_FILE) if run is not None and is_run(run) else {}
        return design, meta
    from hwmodel.mapping import map_model
    from training.checkpoint import load_model
    run = load_model(src.path)
    if hw is None:
        raise ConfigError(f"{src.path} is a run folder: give --hw HW.yaml or a preset name to map it (e.g. --hw default)")
    try:
        design = map_model(run.weights, run.model, hw, str(src.path), run.dataset)
    except ConfigError as exc:
        raise ConfigError(f"{src.path}: cannot map with the hardware config: {exc}") from None
    return design, run.meta
