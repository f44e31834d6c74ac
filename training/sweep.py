"""Regulariser sweeps: one ordinary run folder per (kind, strength, v_hat), then a trade-off table.

SWEEP/none/                      the baseline (no regulariser; a strength of 0 means this run)
SWEEP/m-ssr_s1e-05/              one run folder per strength ('ttfs train' layout)
SWEEP/membrane_v0.8_s1e-05/      the membrane loss also per reference voltage v_hat
SWEEP/tradeoff.csv               one row per complete run folder under SWEEP
Several sweeps (M-SSR, F-SSR, membrane) may share one SWEEP folder and its baseline; the table
covers every complete run in it. A complete run (all epochs committed, and its model and metrics
files those of the last one: training.trainer.run_is_complete) is skipped, a partial one resumed, so
rerunning an interrupted sweep continues where it stopped. SWEEP is locked while the sweep runs. A run folder whose saved config differs from the one
the sweep would train is an error, never silently reused.
"""
from __future__ import annotations

import copy
import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from infra import atomic_io
from infra.folder_lock import folder_lock
from infra.paths import within
from training.config import REG_KINDS, RunConfig
from infra.errors import CheckpointError, ConfigError
from training.trainer import config_differences, run_is_complete, train

CSV_NAME = "tradeoff.csv"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: regulariser kind, strength (0 for the baseline) and v_hat (membrane)."""

    kind: str
    strength: float
    v_hat: float | None = None

    @property
    def name(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "membrane":
            return f"membrane_v{self.v_hat:g}_s{self.strength:g}"
        return f"{self.kind}_s{self.strength:g}"

    def overrides(self) -> list[str]:
        if self.kind == "none":
            return ["reg.kind=none", "reg.strength=0.0", "reg.v_hat=null"]
        v_hat = "null" if self.v_hat is None else repr(float(self.v_hat))
        return [f"reg.kind={self.kind}", f"reg.strength={float(self.strength)!r}", f"reg.v_hat={v_hat}"]


def sweep_points(kind: str, strengths, v_hats=None, baseline: bool = True) -> list[SweepPoint]:
    """The runs of one sweep: the baseline first, then every strength (x every v_hat for membrane)."""
    if kind not in REG_KINDS or kind == "none":
        raise ConfigError(f"--reg: must be one of m-ssr, f-ssr, membrane (got {kind!r})")
    strengths = [float(s) for s in strengths]
    if not strengths or any(s < 0 or not math.isfinite(s) for s in strengths):
        raise ConfigError(f"--strengths: need one or more finite values >= 0 (got {strengths})")
    if kind == "membrane":
        if not v_hats:
            raise ConfigError("--v-hat: required for --reg membrane, e.g. --v-hat 0.5,0.8,0.9")
        if any(not v > 0 for v in v_hats):
            raise ConfigError(f"--v-hat: values must be > 0 (got {list(v_hats)})")
    elif v_hats:
        raise ConfigError(f"--v-hat: only used with --reg membrane (got --reg {kind})")
    points = [SweepPoint("none", 0.0)] if baseline or 0.0 in strengths else []
    for s in sorted(set(strengths)):
        if s == 0.0:
            continue
        for v in (v_hats if kind == "membrane" else [None]):
            points.append(SweepPoint(kind, s, None if v is None else float(v)))
    return points


def point_config(base: dict, point: SweepPoint, overrides=()) -> RunConfig:
    """The RunConfig of one sweep point: base YAML mapping + user overrides + the point's reg section."""
    from infra.config import apply_overrides, build  # the YAML schema lives with the command line

    data = copy.deepcopy(base)
    apply_overrides(data, list(overrides) + point.overrides())
    return build(RunConfig, data)


def _check_same_config(run: Path, cfg: RunConfig) -> None:
    if not (run / "config.yaml").is_file():
        return
    diff = config_differences(run, cfg)
    if diff:
        raise CheckpointError(f"{run}: holds a run whose config differs from this sweep's in {', '.join(diff)}; "
                              "use another --out or the same --config/--set as before")


def run_sweep(base: dict, kind: str, strengths, out, v_hats=None, overrides=(), progress: bool = False) -> list[dict]:
    """Train every point (skipping complete runs, resuming partial ones), then write SWEEP/tradeoff.csv.
    Reports each point and epoch (logging, INFO).

    base: the config mapping read from YAML. Returns the rows of the table.
    """
    out = Path(out)
    points = sweep_points(kind, strengths, v_hats)
    configs = [(p, point_config(base, p, overrides)) for p in points]  # validate all before training
    with folder_lock(out, "ttfs sweep"):
        for i, (point, cfg) in enumerate(configs):
            run = out / point.name
            _check_same_config(run, cfg)
            if run_is_complete(run, cfg.train.epochs):
                log.info("[%d/%d] %s: complete, skipped", i + 1, len(configs), point.name)
                continue
            log.info("[%d/%d] %s: training (%d epochs)", i + 1, len(configs), point.name, cfg.train.epochs)
            train(cfg, run, resume=True, progress=progress)
        rows = collect(out)
        write_tradeoff(out, rows)
    return rows


_METRICS_FIELDS = {"epoch": int, "test_accuracy": float, "spikes_per_neuron": list,
                   "spikes_per_neuron_mean": float, "output_spikes_per_neuron": float}
_TRADEOFF_COLUMNS = ("run", "dataset", "layers", "kind", "strength", "epochs", "accuracy", "spikes_per_neuron_mean")
# what a numeric cell of tradeoff.csv must be beyond finite ("spikes": every spikes-per-neuron column)
_TRADEOFF_RANGES = {"epochs": ("an integer >= 1", lambda x: x >= 1 and x == int(x)),
                    "accuracy": ("a number in [0, 1]", lambda x: 0 <= x <= 1),
                    "spikes": ("a number >= 0", lambda x: x >= 0)}


def run_row(run: str | Path) -> dict | None:
    """The trade-off row of one run folder from its config.yaml and last metrics.jsonl record."""
    run = Path(run)
    records = atomic_io.read_jsonl(run / "metrics.jsonl", CheckpointError, _METRICS_FIELDS)
    if not records or not (run / "config.yaml").is_file():
        return None
    cfg = atomic_io.read_yaml(run / "config.yaml", CheckpointError)
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k, {}), dict) for k in ("reg", "data", "model")):
        raise CheckpointError(f"{run / 'config.yaml'}: not a run config written by 'ttfs train'")
    rec = records[-1]
    reg = cfg.get("reg", {})
    kind = reg.get("kind", "none")
    strength = reg.get("strength", 0.0)
    if isinstance(strength, list):
        strength = ";".join(f"{s:g}" for s in strength)
    row = {
        "run": run.name,
        "dataset": cfg.get("data", {}).get("dataset"),
        "layers": "-".join(str(n) for n in cfg.get("model", {}).get("layers", [])),
        "kind": kind,
        "strength": 0.0 if kind == "none" else strength,
        "v_hat": reg.get("v_hat") if kind == "membrane" else "",
        "epochs": rec["epoch"],
        "accuracy": rec["test_accuracy"],
    }
    for l, s in enumerate(rec["spikes_per_neuron"]):
        row[f"spikes_per_neuron_l{l + 1}"] = s
    row["spikes_per_neuron_mean"] = rec["spikes_per_neuron_mean"]
    row["output_spikes_per_neuron"] = rec["output_spikes_per_neuron"]
    return row


def collect(sweep: str | Path) -> list[dict]:
    """Rows of every run folder under `sweep` that finished at least one epoch, baseline first."""
    rows = [r for d in sorted(Path(sweep).iterdir()) if d.is_dir() and (r := run_row(d)) is not None]
    order = {"none": 0, "m-ssr": 1, "f-ssr": 2, "membrane": 3}
    rows.sort(key=lambda r: (order.get(r["kind"], 9), r["v_hat"] or 0.0, float(str(r["strength"]).split(";")[0])))
    return rows


def write_tradeoff(sweep: str | Path, rows: list[dict]) -> Path:
    path = Path(sweep) / CSV_NAME
    fields = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    # keep the per-layer columns together, before the mean
    spikes = sorted((k for k in fields if k.startswith("spikes_per_neuron_l")), key=lambda k: int(k[19:]))
    head = [k for k in fields if not k.startswith("spikes_per_neuron") and k != "output_spikes_per_neuron"]
    fields = head + spikes + ["spikes_per_neuron_mean", "output_spikes_per_neuron"]
    atomic_io.write_csv(path, rows, fields)
    return path


def read_tradeoff(path: str | Path) -> list[dict]:
    """tradeoff.csv back into rows: numbers as floats, epochs an int, v_hat None when empty.

    A damaged file is a CheckpointError naming it (delete it: `ttfs plot` rebuilds it from the run
    folders); so is a value out of range (row and column named): every number finite, epochs an
    integer >= 1, accuracy in [0, 1], spikes per neuron >= 0, and each run the name of a folder
    directly inside the sweep folder (infra.paths.within), so nothing outside it is ever read."""
    rows = []
    fix = "delete it and rerun 'ttfs plot SWEEP --out DIR' to rebuild it from the run folders"
    try:
        reader = csv.DictReader(io.StringIO(Path(path).read_bytes().decode("utf-8"), newline=""))
        missing = [c for c in _TRADEOFF_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise CheckpointError(f"{path}: no column {', '.join(missing)}; {fix}")
        for i, r in enumerate(reader, 1):
            if None in r or None in r.values():
                more = "more" if None in r else "fewer"
                raise ValueError(f"line {reader.line_num} has {more} fields than the header")
            rows.append({k: _tradeoff_cell(path, i, k, v, fix) for k, v in r.items()})
    except (csv.Error, ValueError) as exc:      # UnicodeDecodeError is a ValueError
        raise CheckpointError(f"{path}: not a readable trade-off table ({' '.join(str(exc).split())[:200]}); "
                              f"{fix}") from None
    return rows


def _tradeoff_cell(path, row: int, col: str, text: str, fix: str):
    """One cell of tradeoff.csv, checked (see read_tradeoff); CheckpointError naming row and column."""
    where = f"{path}: row {row}, column {col!r}"
    if col == "run":
        within(Path(path).parent, text, where, fix)
        return text
    if col in ("dataset", "layers", "kind"):
        return text
    if text == "" and col not in _TRADEOFF_COLUMNS:
        return None                             # v_hat of a non-membrane run, layers a run lacks
    parts = text.split(";") if col == "strength" else [text]
    spikes = col.startswith("spikes_per_neuron") or col == "output_spikes_per_neuron"
    need, fits = _TRADEOFF_RANGES.get("spikes" if spikes else col, ("a finite number", lambda x: True))
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = [math.nan]
    if not all(math.isfinite(x) and fits(x) for x in values):
        raise CheckpointError(f"{where}: {text!r} is not {need}; {fix}")
    if col == "epochs":
        return int(values[0])
    return text if col == "strength" and len(parts) > 1 else values[0]
