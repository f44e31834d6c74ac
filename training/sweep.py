"""Regulariser sweeps: one ordinary run folder per (kind, strength, v_hat[, seed]), then a trade-off table.

SWEEP/none/                      the baseline (no regulariser; a strength of 0 means this run)
SWEEP/m-ssr_s1e-05/              one run folder per strength ('ttfs train' layout)
SWEEP/membrane_v0.8_s1e-05/      the membrane loss also per reference voltage v_hat
SWEEP/m-ssr_s1e-05_seed2/        with seeds as an axis (`seeds=[0, 1, 2]`): one run per point and seed
SWEEP/tradeoff.csv               one row per run folder under SWEEP that finished an epoch
SWEEP/tradeoff_mean.csv          one row per point: mean and sample std over its seeds (`aggregate`)
Several sweeps (M-SSR, F-SSR, membrane) may share one SWEEP folder and its baseline; the table
covers every run in it. A complete run (all epochs committed, and its model and metrics
files those of the last one: training.trainer.run_is_complete) is skipped, a partial one resumed, so
rerunning an interrupted sweep continues where it stopped. SWEEP is locked while the sweep runs, and
each run folder while it trains. `--set reg.energy_strength=X` (the chip's energy, needs `chip`)
applies to every point, the baseline included; tradeoff.csv holds each run's energy_strength and,
for runs trained for a chip, its energy_nj (conduction) and static_nj (the neurons' bias until the
stop, when the chip counts one): a point column and metrics. A run folder whose saved config
differs from the one the sweep would train is an error, never silently reused, and so is one
trained for another chip or, with an energy term, for another static power (--energy).

`chip` trains every point for a chip (`ttfs sweep --hw`): a callable giving the ChipView of a
model config (training.chip_layer), called where the point trains, so it must pickle for worker
processes (hwmodel's ChipTraining bound to a hardware config). Each run folder then keeps its
hw.yaml, as `ttfs train --hw` writes it.

The points are independent trainings: `jobs=N` trains N at once in local worker processes (one
numba/BLAS thread each by default), `dask_address` sends them to a dask.distributed cluster
(infra.workers.run_tasks, the engine `ttfs simulate` uses). Each point trains exactly as it would
alone (same config, same seed, same run folder), so the weights do not depend on where it ran.
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
from infra.workers import check_dask_address, run_tasks, thread_env
from training.trainer import (STATIC_KEY, check_static_power, config_differences, hw_change, run_is_complete,
                              same_hw, saved_hw, saved_static_power_w, train)

CSV_NAME = "tradeoff.csv"
MEAN_CSV_NAME = "tradeoff_mean.csv"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: regulariser kind, strength (0 for the baseline), v_hat (membrane) and
    seed (None: the base config's, and no seed in the name)."""

    kind: str
    strength: float
    v_hat: float | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "none":
            name = "none"
        elif self.kind == "membrane":
            name = f"membrane_v{self.v_hat:g}_s{self.strength:g}"
        else:
            name = f"{self.kind}_s{self.strength:g}"
        return name if self.seed is None else f"{name}_seed{self.seed}"

    def overrides(self) -> list[str]:
        seed = [] if self.seed is None else [f"seed={int(self.seed)}"]
        if self.kind == "none":
            return ["reg.kind=none", "reg.strength=0.0", "reg.v_hat=null"] + seed
        v_hat = "null" if self.v_hat is None else repr(float(self.v_hat))
        return [f"reg.kind={self.kind}", f"reg.strength={float(self.strength)!r}", f"reg.v_hat={v_hat}"] + seed


def check_seeds(seeds) -> list[int]:
    """`--seeds`: one or more distinct integers >= 0; ConfigError naming the flag otherwise."""
    seeds = list(seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if not seeds or bad:
        raise ConfigError(f"--seeds: need one or more integers >= 0, e.g. --seeds 0,1,2 (got {seeds})")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"--seeds: {', '.join(map(str, twice))} given more than once (got {seeds})")
    return seeds


def sweep_points(kind: str, strengths, v_hats=None, baseline: bool = True, seeds=None) -> list[SweepPoint]:
    """The runs of one sweep: the baseline first, then every strength (x every v_hat for membrane),
    each once per seed when `seeds` is given."""
    if kind not in REG_KINDS or kind == "none":
        raise ConfigError(f"--reg: must be one of m-ssr, f-ssr, membrane (got {kind!r})")
    strengths = [float(s) for s in strengths]
    if not strengths or any(s < 0 or not math.isfinite(s) for s in strengths):
        raise ConfigError(f"--strengths: need one or more finite values >= 0 (got {strengths})")
    if kind == "membrane":
        if not v_hats:
            raise ConfigError("--v-hat: required for --reg membrane, e.g. --v-hat 0.5,0.8,0.9")
        if any(not (math.isfinite(v) and v >= 0) for v in v_hats):
            raise ConfigError(f"--v-hat: values must be finite and >= 0 (got {list(v_hats)})")
    elif v_hats:
        raise ConfigError(f"--v-hat: only used with --reg membrane (got --reg {kind})")
    per_seed = [None] if seeds is None else check_seeds(seeds)
    points = [SweepPoint("none", 0.0, seed=k) for k in per_seed] if baseline or 0.0 in strengths else []
    for s in sorted(set(strengths)):
        if s == 0.0:
            continue
        for v in (dict.fromkeys(v_hats) if kind == "membrane" else [None]):     # a v_hat given twice: one run
            points += [SweepPoint(kind, s, None if v is None else float(v), k) for k in per_seed]
    return points


def point_config(base: dict, point: SweepPoint, overrides=()) -> RunConfig:
    """The RunConfig of one sweep point: base YAML mapping + user overrides + the point's reg section."""
    from infra.config import apply_overrides, build  # the YAML schema lives with the command line

    data = copy.deepcopy(base)
    apply_overrides(data, list(overrides) + point.overrides())
    return build(RunConfig, data)


def _check_same_config(run: Path, cfg: RunConfig, hw: dict | None, canonical=None) -> None:
    if not (run / "config.yaml").is_file():
        return
    diff = config_differences(run, cfg)
    if diff:
        raise CheckpointError(f"{run}: holds a run whose config differs from this sweep's in {', '.join(diff)}; "
                              "use another --out or the same --config/--set as before")
    saved, same = same_hw(saved_hw(run), hw, canonical)
    if not same:
        have, want = hw_change(run, saved, hw)
        raise CheckpointError(f"{run}: holds a run trained for {have}, and this sweep trains for {want}; "
                              "use another --out or the same --hw (or none) as before")


def run_sweep(base: dict, kind: str, strengths, out, v_hats=None, overrides=(), progress: bool = False,
              seeds=None, jobs: int = 1, dask_address: str | None = None, threads_per_job: int = 1,
              chip=None) -> list[dict]:
    """Train every point (skipping complete runs, resuming partial ones), then write SWEEP/tradeoff.csv
    and SWEEP/tradeoff_mean.csv. Reports each point (and, trained here, each epoch) through logging, INFO.

    base: the config mapping read from YAML; seeds: a seed axis (see sweep_points); jobs: points
    trained at once in local worker processes; dask_address: a dask.distributed scheduler to send
    the points to instead (its workers must see SWEEP at the same absolute path); threads_per_job:
    the numba threads of each training in a worker (and BLAS threads in a local one). A point's
    weights are those of the same point trained alone, at any thread count (the kernels' sums do
    not depend on it: tests/test_threads.py); chip: train every point for a chip (module
    docstring). Returns the rows of tradeoff.csv.
    """
    out = Path(out)
    points = sweep_points(kind, strengths, v_hats, seeds=seeds)
    configs = [(p, point_config(base, p, overrides)) for p in points]  # validate all before training
    views = [None if chip is None else chip(cfg.model) for _, cfg in configs]   # each point's model checked now
    view = views[0]
    hw = None if view is None else view.record()
    if dask_address:
        check_dask_address(dask_address)
    with folder_lock(out, "ttfs sweep"):
        todo = []
        for i, (point, cfg) in enumerate(configs):
            run = out / point.name
            _check_same_config(run, cfg, hw, None if view is None else view.canonical)
            check_static_power(run, cfg, views[i])     # a kept point counted the power the new ones count
            if run_is_complete(run, cfg.train.epochs):
                log.info("[%d/%d] %s: complete, skipped", i + 1, len(configs), point.name)
            else:
                todo.append((i, point, cfg))
        here = not dask_address and jobs <= 1
        if todo and not here:
            where = f"the dask cluster at {dask_address}" if dask_address else f"{min(jobs, len(todo))} worker processes"
            log.info("training %d of %d points on %s", len(todo), len(configs), where)

        def done(result):
            i, record = result
            if not here:
                log.info("[%d/%d] %s: trained (%d epochs), test accuracy %.4f, spikes/neuron %.3f", i + 1,
                         len(configs), configs[i][0].name, record.get("epoch", 0), record.get("test_accuracy", 0.0),
                         record.get("spikes_per_neuron_mean", 0.0))

        folder = out.resolve() if dask_address else out      # as the cluster's workers see it
        threads = None if here else threads_per_job
        run_tasks(train_point, [(i, len(configs), str(folder / point.name), cfg, here and progress, threads, chip)
                                for i, point, cfg in todo],
                  done, jobs=jobs, dask_address=dask_address, env=thread_env(threads_per_job), name="ttfs-sweep")
        rows = collect(out)
        write_tradeoff(out, rows)
        write_aggregate(out, aggregate(rows))
    return rows


def train_point(index: int, total: int, run: str, cfg: RunConfig, progress: bool = False,
                threads: int | None = None, chip=None) -> tuple[int, dict]:
    """Sweep point `index` of `total` into its run folder (resumed if partial): the task run_sweep
    hands to infra.workers, here or in a worker. threads: numba threads of this training (None:
    as they are; numba's count is per calling thread, so this also holds on a dask worker thread);
    chip: run_sweep's. Returns (index, the last epoch's metrics)."""
    log.info("[%d/%d] %s: training (%d epochs)", index + 1, total, Path(run).name, cfg.train.epochs)
    if threads is not None:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    view = None if chip is None else chip(cfg.model)
    return index, train(cfg, run, resume=True, progress=progress, view=view)


_METRICS_FIELDS = {"epoch": int, "test_accuracy": float, "spikes_per_neuron": list,
                   "spikes_per_neuron_mean": float, "output_spikes_per_neuron": float}
_TRADEOFF_COLUMNS = ("run", "dataset", "layers", "kind", "strength", "epochs", "accuracy", "spikes_per_neuron_mean")
# what a numeric cell of tradeoff.csv must be beyond finite ("spikes": every spikes-per-neuron column)
_TRADEOFF_RANGES = {"epochs": ("an integer >= 1", lambda x: x >= 1 and x == int(x)),
                    "seed": ("an integer >= 0", lambda x: x >= 0 and x == int(x)),
                    "accuracy": ("a number in [0, 1]", lambda x: 0 <= x <= 1),
                    "spikes": ("a number >= 0", lambda x: x >= 0),
                    "energy_strength": ("a number >= 0", lambda x: x >= 0),
                    "energy_nj": ("a number >= 0", lambda x: x >= 0),
                    "static_nj": ("a number >= 0", lambda x: x >= 0),
                    "static_power_w": ("a number >= 0", lambda x: x >= 0)}


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
        "energy_strength": reg.get("energy_strength", 0.0),
        "seed": cfg.get("seed", ""),
        "epochs": rec["epoch"],
        "accuracy": rec["test_accuracy"],
    }
    for l, s in enumerate(rec["spikes_per_neuron"]):
        row[f"spikes_per_neuron_l{l + 1}"] = s
    row["spikes_per_neuron_mean"] = rec["spikes_per_neuron_mean"]
    row["output_spikes_per_neuron"] = rec["output_spikes_per_neuron"]
    for key in ("energy_nj", "static_nj"):      # the term's conduction and static parts (metrics.jsonl)
        if key in rec:
            row[key] = rec[key]
    if "static_nj" in rec:       # the power behind static_nj: points differ when it does
        row[STATIC_KEY] = saved_static_power_w(run)
    return row


def collect(sweep: str | Path) -> list[dict]:
    """Rows of every run folder under `sweep` that finished at least one epoch, baseline first."""
    rows = [r for d in sorted(Path(sweep).iterdir()) if d.is_dir() and (r := run_row(d)) is not None]
    order = {"none": 0, "m-ssr": 1, "f-ssr": 2, "membrane": 3}
    rows.sort(key=lambda r: (order.get(r["kind"], 9), r["v_hat"] or 0.0, float(str(r["strength"]).split(";")[0]),
                             r["seed"] if isinstance(r["seed"], int) else -1))
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


# the columns that say which point a run belongs to; every other number column is averaged
POINT_COLUMNS = ("dataset", "layers", "kind", "strength", "v_hat", "energy_strength", "static_power_w", "epochs")


def _is_metric(col: str) -> bool:
    return (col == "accuracy" or col.startswith("spikes_per_neuron") or col == "output_spikes_per_neuron"
            or col in ("energy_nj", "static_nj"))


def aggregate(rows: list[dict]) -> list[dict]:
    """One row per sweep point over its seeds (tradeoff_mean.csv), in the order of `rows`.

    A point is the runs that agree in POINT_COLUMNS (data set, layers, regulariser, strength,
    v_hat, energy strength, the static power its energy figures count, and epochs trained: a run
    still at an earlier epoch is a point of its own). Its row holds
    those columns, n_seeds (the number of runs), seeds and runs (';'-joined), and for every metric
    column of tradeoff.csv (accuracy, spikes_per_neuron_l*, spikes_per_neuron_mean,
    output_spikes_per_neuron) the mean under the same name and the sample standard deviation
    (ddof=1) as NAME_std, empty (None) for a single run."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple(None if r.get(c) in (None, "") else r.get(c) for c in POINT_COLUMNS)
        groups.setdefault(key, []).append(r)
    out = []
    for key, runs in groups.items():
        row = dict(zip(POINT_COLUMNS, key))
        row.update(n_seeds=len(runs), seeds=";".join("" if r.get("seed") is None else str(r["seed"]) for r in runs),
                   runs=";".join(r["run"] for r in runs))
        for col in dict.fromkeys(c for r in runs for c in r if _is_metric(c)):
            if any(r.get(col) in (None, "") for r in runs):
                continue                     # a layer one run lacks: not a number of this point
            values = [float(r[col]) for r in runs]
            mean = math.fsum(values) / len(values)
            row[col] = mean
            row[f"{col}_std"] = (math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
                                 if len(values) > 1 else None)
        out.append(row)
    return out


def write_aggregate(sweep: str | Path, rows: list[dict]) -> Path:
    """SWEEP/tradeoff_mean.csv: the rows of `aggregate`, each metric's mean beside its _std."""
    path = Path(sweep) / MEAN_CSV_NAME
    metrics = list(dict.fromkeys(c for r in rows for c in r if _is_metric(c) and not c.endswith("_std")))
    layers = sorted((c for c in metrics if c.startswith("spikes_per_neuron_l")), key=lambda c: int(c[19:]))
    ordered = ["accuracy"] + layers + [c for c in metrics if c != "accuracy" and c not in layers]
    fields = [*POINT_COLUMNS, "n_seeds", "seeds", "runs"] + [x for c in ordered for x in (c, f"{c}_std")]
    atomic_io.write_csv(path, rows, fields)
    return path


def read_tradeoff(path: str | Path) -> list[dict]:
    """tradeoff.csv back into rows: numbers as floats, epochs and seed ints, v_hat None when empty.

    A damaged file is a CheckpointError naming it (delete it: `ttfs plot` rebuilds it from the run
    folders); so is a value out of range (row and column named): every number finite, epochs an
    integer >= 1, a seed an integer >= 0, accuracy in [0, 1], spikes per neuron >= 0, and each run the name of a folder
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
    if col in ("epochs", "seed"):
        return int(values[0])
    return text if col == "strength" and len(parts) > 1 else values[0]
