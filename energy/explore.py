"""Design-space exploration (`ttfs explore`): a grid of hardware configs times trained runs, each
pair with its hardware accuracy and its energy per inference, and the accuracy-energy Pareto front.

The grid is the product of the values of each varied hardware key (`--vary c_mem_f=1e-13,1e-12`),
every point a full HardwareConfig (the base config with the point's values), validated before any
work. For every (point, run) the run is mapped onto the point's chip (as `ttfs map`; with scale
"common", the default, the runs of one architecture share one chip design per point, as `ttfs map
--common-scale-with` and `ttfs energy-report` make it, so their energies compare), evaluated
over Monte-Carlo chips as `ttfs hw-tradeoff` evaluates it (hwmodel.tradeoff.design_row: accuracy
mean and std, hidden spikes per neuron, the run's regulariser and software accuracy), and its
energy per inference computed by the energy model on the stored chip over the same images
(energy.model.design_energy; total, each component and the field's metrics, energy.report.run_stats
and field_metrics).

EXPLORE/points.csv holds a row per (point, run), EXPLORE/pareto.csv the rows no other row beats
in both energy per inference (lower) and hardware accuracy (higher), EXPLORE/pareto.png the two
against each other, EXPLORE/explore.json the grid and settings of the last command. Every pair's
figures are cached in EXPLORE/cache/<fingerprint>.json, the fingerprint over the run's files, the
point's full hardware config, the energy config, trials, limit and the test images
(infra.fingerprint), written atomically as each pair finishes: a rerun, a killed run resumed or a
grid extended computes only the pairs not yet there; a folder explored with other inputs keeps its
cache, and its tables then hold this command's pairs (as hw-tradeoff's). The pairs run here, in
local worker processes or on a dask cluster (infra.workers.run_tasks); EXPLORE is locked while a
command uses it.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from energy.config import EnergyConfig
from energy.model import COMPONENTS
from hwmodel.config import HardwareConfig
from hwmodel.sources import Source, resolve_sources
from infra import atomic_io, provenance
from infra.atomic_io import csv_number
from infra.config import apply_overrides, build
from infra.errors import CheckpointError, ConfigError
from infra.fingerprint import digest
from infra.folder_lock import folder_lock
from infra.killpoints import maybe_exit

FORMAT = "ttfs-explore/1"
POINTS_CSV, PARETO_CSV, PARETO_PNG, RECORD = "points.csv", "pareto.csv", "pareto.png", "explore.json"
CACHE = "cache"
ENERGY = "energy_per_inference_j"       # the front's axes: lower energy, higher hardware accuracy
ACCURACY = "accuracy"
# the energy figures of a row, from energy.report.run_stats (its field metrics included)
_ENERGY_STATS = ("energy_per_inference_j", "energy_per_inference_std_j", "spike_energy_j", "neuron_spike_energy_j",
                 "energy_per_mac_j", "energy_per_sop_j", "tops_per_w_equivalent", "macs_per_inference",
                 "synaptic_ops_per_inference", "delay_s", "t_stop_s", "output_fired_fraction")


@dataclass(frozen=True)
class Point:
    """One design of the grid: its index, the varied keys' values, and the full hardware config."""

    index: int
    values: tuple           # ((key, value), ...) in the order of --vary
    hw: HardwareConfig

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_text(v)}" for k, v in self.values)


def _text(value) -> str:
    """A varied key's value as points.csv and the labels show it (a float exactly: repr round-trips)."""
    return "null" if value is None else repr(value) if isinstance(value, float) else str(value)


def parse_vary(items) -> list[tuple[str, list[str]]]:
    """(key, raw values) per `--vary KEY=V1,V2,...` (KEY a HardwareConfig key, `hw.` optional);
    a malformed item, an unknown key, a key varied twice or a value given twice is a ConfigError."""
    keys = set(HardwareConfig.__dataclass_fields__)
    out: list[tuple[str, list[str]]] = []
    for item in items or ():
        key, eq, raw = item.partition("=")
        key = key.strip()
        key = key[3:] if key.startswith("hw.") else key
        values = [v.strip() for v in raw.split(",")]
        if not eq or not key or not all(values):
            raise ConfigError(f"--vary {item!r}: expected KEY=V1,V2,..., e.g. --vary c_mem_f=1e-13,1e-12")
        if key not in keys:
            raise ConfigError(f"--vary {key}: not a hardware key; one of {', '.join(sorted(keys))}")
        if key in (k for k, _ in out):
            raise ConfigError(f"--vary {key}: given twice; give all its values in one --vary")
        if len(set(values)) != len(values):
            raise ConfigError(f"--vary {key}: a value given twice ({raw})")
        out.append((key, values))
    if not out:
        raise ConfigError("--vary: give at least one KEY=V1,V2,... (a hardware key and its values)")
    return out


def grid(base: HardwareConfig, vary, fixed_keys=()) -> list[Point]:
    """Every combination of the --vary values (the first key slowest) on the base config, each
    validated as a --set would be; fixed_keys: the keys --set gave (varying one too is an error)."""
    vary = parse_vary(vary)
    fixed = {k[3:] if k.startswith("hw.") else k for k in fixed_keys}
    for key, _ in vary:
        if key in fixed:
            raise ConfigError(f"--vary {key}: also given by --set hw.{key}; give it in one of them")
    points, seen = [], {}
    for combo in itertools.product(*(values for _, values in vary)):
        items = [f"{key}={raw}" for (key, _), raw in zip(vary, combo)]
        try:
            hw = build(HardwareConfig, apply_overrides(base.to_dict(), items), "hw")
        except ConfigError as exc:
            raise ConfigError(f"--vary point {' '.join(items)}: {exc}") from None
        values = tuple((key, getattr(hw, key)) for key, _ in vary)
        if hw in seen:
            raise ConfigError(f"--vary: points {' '.join(seen[hw])} and {' '.join(items)} are the same design")
        seen[hw] = items
        points.append(Point(len(points), values, hw))
    return points


def run_sources(groups) -> list[tuple[str, Source]]:
    """(group, run) for every run of the input groups (hwmodel.tradeoff.input_groups of the folders
    given: runs and sweeps), else a ConfigError: a design keeps the chip it was mapped onto, so it
    has no place in a grid."""
    pairs = [(group, src) for group, sources in groups for src in sources]
    for _, src in pairs:
        if src.kind != "run":
            raise ConfigError(f"{src.path}: a design folder keeps the chip it was mapped onto; explore maps runs "
                              "onto each point: pass the run folder it was mapped from (design.yaml: source_run)")
    return pairs


def _run_files(path: Path) -> list[Path]:
    """The files of a run a row depends on: its weights, model.yaml and, if any, the chip it trained for."""
    return [path / "model.npz", path / "model.yaml"] + ([path / "hw.yaml"] if (path / "hw.yaml").is_file() else [])


def fingerprint(src: Source, hw: HardwareConfig, cfg: EnergyConfig, trials: int, limit, data_key: str) -> str:
    """What a pair's figures depend on; the formats of hw-tradeoff's and energy-report's figures
    are part of it, so a change there recomputes the pairs too."""
    from energy.report import FORMAT as REPORT_FORMAT
    from hwmodel.tradeoff import FORMAT as TRADEOFF_FORMAT

    return digest(*_run_files(src.path), hw.to_dict(), cfg.to_dict(), trials, limit, FORMAT, TRADEOFF_FORMAT,
                  REPORT_FORMAT, data_key)


_DATA: dict = {}


def _test_images(dataset: str, limit, data_dir):
    """The first `limit` test images of the data set (loaded once per process)."""
    from training.data import load_split, select

    key = (dataset, limit, None if data_dir is None else str(data_dir))
    if key not in _DATA:
        _DATA[key] = select(load_split(dataset, "test", data_dir), limit=limit)
    return _DATA[key]


def compute(index: int, label: str, src: Source, hw: HardwareConfig, cfg: EnergyConfig, trials: int, dataset: str,
            limit, data_dir) -> tuple[int, dict]:
    """The task of one (point, run) pair: (index, its figures), here or in a worker; a design the
    run cannot be mapped onto (or the energy model cannot take) is a ConfigError naming the point."""
    from energy.model import check_design, design_energy
    from energy.report import run_stats
    from hwmodel.sources import load_source
    from hwmodel.tradeoff import design_row
    from training.data import check_fits

    data = _test_images(dataset, limit, data_dir)
    try:
        design, meta = load_source(src, hw)
        check_design(design, cfg)
    except ConfigError as exc:
        raise ConfigError(f"--vary point {label}: {exc}") from None
    check_fits(str(src.path), design.g_pos, design.dataset)
    row = design_row(src, "", design, meta, data.images, data.labels, trials, progress=False)
    result, pred = design_energy(design, cfg, data.images, progress=False)
    stats = run_stats(src.name, design, meta, result, pred, data.labels, rate_hz=1.0)
    del row["group"], row["input"]
    row.update({k: stats[k] for k in _ENERGY_STATS})
    row.update({f"energy_{c}_j": stats["breakdown_j"][c] for c in COMPONENTS})
    row["energy_model_accuracy"] = stats["accuracy"]
    row["full_scale_weight"] = ";".join(f"{w:.17g}" for w in stats["full_scale_weight"])
    return index, row


def _read_cache(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        held = atomic_io.read_json(path, CheckpointError)
    except CheckpointError:                 # a damaged cache file is recomputed
        return None
    return held.get("row") if isinstance(held, dict) and held.get("fingerprint") == key else None


def explore(paths, points: list[Point], cfg: EnergyConfig, out, trials: int = 1, limit=None, data_dir=None,
            jobs: int = 1, dask_address: str | None = None, progress: bool = True, scale: str = "common") -> dict:
    """Every (point, run) pair's row, from EXPLORE/cache or computed; writes the tables and figure.
    scale: how each point maps the runs (energy.report.source_hardware: "common", one chip design
    per point for the runs of one architecture, or "per-run"). Returns {"rows", "front", "computed", "cached"}."""
    from tqdm import tqdm

    from energy.report import source_hardware
    from hwmodel.tradeoff import common_dataset, input_groups
    from infra.workers import run_tasks, thread_env

    out = Path(out)
    groups = input_groups(paths)
    runs = run_sources(groups)
    dataset = common_dataset(groups)
    data = _test_images(dataset, limit, data_dir)
    data_key = digest(data.images, data.labels)
    sources = [src for _, src in runs]
    hw_of = {p.index: source_hardware(sources, p.hw, scale) for p in points}    # the chip each pair maps onto
    pairs = [(p, group, src, hw_of[p.index][src.path]) for p in points for group, src in runs]
    keys = [fingerprint(src, hw, cfg, trials, limit, data_key) for _, _, src, hw in pairs]
    cache = out / CACHE
    with folder_lock(out, "ttfs explore"):
        cache.mkdir(parents=True, exist_ok=True)
        found = [_read_cache(cache / f"{k}.json", k) for k in keys]
        todo = [i for i, row in enumerate(found) if row is None]
        bar = tqdm(total=len(pairs), initial=len(pairs) - len(todo), unit="pair", desc="explore", disable=not progress)

        def done(result) -> None:
            i, row = result
            atomic_io.write_text(cache / f"{keys[i]}.json", json.dumps({"fingerprint": keys[i], "row": row}))
            found[i] = json.loads(json.dumps(row))     # as a cached row reads back: one format
            bar.update(1)
            maybe_exit("explore.after_point")

        def task(i):
            p, _, src, hw = pairs[i]
            if dask_address:                # as the cluster's workers see the run
                src = Source(src.name, src.path.resolve(), src.kind)
            return (i, p.label, src, hw, cfg, trials, dataset, limit,
                    None if data_dir is None else str(Path(data_dir).resolve()) if dask_address else data_dir)

        try:
            run_tasks(compute, [task(i) for i in todo], done, jobs=jobs, dask_address=dask_address,
                      env=thread_env(1), name="ttfs-explore")
        finally:
            bar.close()
        rows = [_row(p, group, src, found[i]) for i, (p, group, src, _) in enumerate(pairs)]
        front = pareto_front(rows)
        atomic_io.write_csv(out / POINTS_CSV, rows)
        atomic_io.write_csv(out / PARETO_CSV, front, list(dict.fromkeys(k for r in rows for k in r)))
        atomic_io.save_png(pareto_figure(rows, front, trials), out / PARETO_PNG, dpi=130)
        atomic_io.write_text(out / RECORD, json.dumps(_record(paths, points, cfg, trials, limit, dataset, scale),
                                                      indent=1))
    return {"rows": rows, "front": front, "computed": len(todo), "cached": len(pairs) - len(todo)}


def _row(p: Point, group: str, src: Source, figures: dict) -> dict:
    """A points.csv row: the point, the run (named as given now), then its figures."""
    return {"point": p.index, **{f"hw.{k}": _text(v) for k, v in p.values}, "group": group, "input": src.name,
            **figures}


def _record(paths, points: list[Point], cfg: EnergyConfig, trials, limit, dataset, scale) -> dict:
    """explore.json: what the tables of the folder were computed from."""
    return {"format": FORMAT, "inputs": [str(p) for p in paths], "dataset": dataset, "trials": trials,
            "limit": limit, "scale": scale, "energy_config": cfg.to_dict(),
            "points": [{"point": p.index, "values": {k: v for k, v in p.values}, "hw": p.hw.to_dict()} for p in points],
            provenance.KEY: provenance.provenance()}


def pareto_front(rows: list[dict], energy: str = ENERGY, accuracy: str = ACCURACY) -> list[dict]:
    """The rows no other row dominates (energy <= and accuracy >=, one of them strictly), by rising
    energy; rows with the same figures are kept together, rows without finite figures left out."""
    keep = [r for r in rows if math.isfinite(csv_number(r[energy])) and math.isfinite(csv_number(r[accuracy]))]
    keep.sort(key=lambda r: (csv_number(r[energy]), -csv_number(r[accuracy])))
    front, last = [], None
    for r in keep:
        e, a = csv_number(r[energy]), csv_number(r[accuracy])
        if last is None or a > last[1] or (e, a) == last:
            front.append(r)
            last = (e, a)
    return front


def pareto_figure(rows: list[dict], front: list[dict], trials: int):
    """Energy per inference (log x) against hardware accuracy: every pair faint, the front as a step
    line with its pairs in full colour, a colour and marker per regulariser (training.plots.KIND_STYLE)."""
    from matplotlib.figure import Figure

    from training.plots import KIND_LABEL, KIND_STYLE, style_key

    def key(r):
        return style_key(r["kind"], r.get("energy_strength"))

    fig = Figure(figsize=(6.8, 4.6))
    ax = fig.subplots()
    for kind in dict.fromkeys(key(r) for r in rows):
        color, marker = KIND_STYLE.get(kind, ("tab:gray", "x"))
        mine = [r for r in rows if key(r) == kind]
        ax.scatter([csv_number(r[ENERGY]) * 1e9 for r in mine], [csv_number(r[ACCURACY]) * 100 for r in mine],
                   color=color, marker=marker, alpha=0.25, s=28, label=KIND_LABEL.get(kind, kind))
        top = [r for r in front if key(r) == kind]
        ax.scatter([csv_number(r[ENERGY]) * 1e9 for r in top], [csv_number(r[ACCURACY]) * 100 for r in top],
                   color=color, marker=marker, s=46, edgecolors="black", linewidths=0.6, zorder=3)
    if front:
        x = np.array([csv_number(r[ENERGY]) for r in front]) * 1e9
        y = np.array([csv_number(r[ACCURACY]) for r in front]) * 100
        ax.step(x, y, where="post", color="black", lw=1.1, zorder=2, label="Pareto front")
        for r, xi, yi in zip(front, x, y):
            ax.annotate(f"p{r['point']}", (xi, yi), textcoords="offset points", xytext=(4, -9), fontsize=6)
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference (nJ, energy model, stored chip)")
    ax.set_ylabel(f"hardware accuracy (%, mean over {trials} chip(s))")
    first = rows[0]
    points = len({r["point"] for r in rows})
    ax.set_title(f"{first['dataset']} {first['layers']}: {points} designs x {len(rows) // points} runs, "
                 f"{first['n']} images; front: p<point> (points.csv)", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
