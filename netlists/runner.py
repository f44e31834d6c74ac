"""`ttfs simulate`: circuit-level inference of N test images, resumable, in parallel processes.

Each image is simulated in ngspice layer by layer (netlists/simulate.py) and compared with the
behavioural model (hwmodel.behavioural.layer_times). One JSON line per image goes to
SIM/results.jsonl as soon as it is done. A failed image (convergence failure, timeout) is retried
once with safer solver settings, then recorded with `"status": "failed"` and the run goes on; if
ngspice cannot start at all before any image succeeded, the run stops with an error instead.

Resume: a rerun skips the images already simulated, keyed on their image index (duplicate or torn
lines are dropped when the file is rewritten), and simulates failed images again. SIM/simulate.json,
written with the first result, records the options and a fingerprint of the design's arrays and the
data set (infra.fingerprint): results of a design re-mapped in place, or of other data, are
recomputed, and a folder holding another design's results is refused. SIM is locked while a
simulation runs (infra.folder_lock).

Parallelism: worker processes (ngspice's shared library is not reentrant, so one ngspice per
process, each in its own server process, netlists/ngspice.py; every call holds a process-wide
lock), or a dask.distributed cluster given by address (best with one thread per worker,
`dask worker ADDRESS --nthreads 1`), both through infra.workers.run_tasks; local workers run one BLAS / numba thread each
(`thread_env(1)`: two workers with two BLAS threads each fought over two cores). Worker processes and
ngspice servers die with the process that started them (infra.lifetime), even when it is killed.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from netlists.circuit import Circuit, circuit_from_design
from netlists.simulate import FAST, SAFE, simulate_network
from infra import atomic_io, provenance
from infra.errors import CheckpointError, EngineError, SimulationError
from infra.fingerprint import digest
from infra.folder_lock import folder_lock
from infra.killpoints import maybe_exit
from infra.workers import check_dask_address, run_tasks, thread_env

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
CONFIG = "simulate.json"
log = logging.getLogger(__name__)

_LOCK = threading.Lock()          # one ngspice call at a time in this process
_CACHE: dict = {}                 # design path -> (design, circuit), per worker process


@dataclass(frozen=True)
class Settings:
    t_rise_s: float | None = None      # row-driver edge; None: 1e-3 * time_scale_s
    timeout_s: float = 900.0           # per image and attempt
    wires: str = "reduced"             # netlists.circuit.WIRE_NETLISTS: how a crossbar's wires are written


def _stat_key(design_path) -> tuple:
    """Changes when a design file is rewritten (re-mapped in place), so the cache never serves the old one."""
    out = []
    for name in ("design.npz", "design.yaml"):
        try:
            st = (Path(design_path) / name).stat()
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def load(design_path: str, t_rise_s: float | None = None, wires: str = "reduced"):
    """(design, circuit) for a design folder, cached per process. A reduced netlist's tile ports are
    solved once per design (netlists.ports.design_ports: DESIGN/wires-cache/ports.npz), read by every
    worker and rerun."""
    key = (str(design_path), t_rise_s, wires, _stat_key(design_path))
    if key not in _CACHE:
        from hwmodel.design import load_design
        design = load_design(design_path)
        from netlists.ports import with_design_ports      # now, not inside the first image's time
        circuit = with_design_ports(design, circuit_from_design(design, t_rise_s, wires))
        _CACHE[key] = (design, circuit)
    return _CACHE[key]


def simulate_image(circuit: Circuit, t_input_s: np.ndarray, timeout_s: float = 900.0) -> dict:
    """Circuit-level firing times of one image, retrying once with safer options on failure."""
    from netlists import ngspice

    def cpu() -> float:      # this process plus its ngspice server
        ses = ngspice._SESSION
        return time.process_time() + (ses.cpu_seconds() if ses is not None else 0.0)

    start, cpu0 = time.perf_counter(), cpu()
    errors = []

    def version() -> str | None:     # the ngspice that ran it, in this (worker) process
        return provenance.provenance()["ngspice"]

    for attempt, settings in enumerate((FAST, SAFE)):
        try:
            with _LOCK:
                times = simulate_network(circuit, t_input_s, settings, timeout_s=timeout_s)
            return {"status": "ok", "times": [t.tolist() for t in times], "retried": attempt > 0,
                    "errors": errors, "seconds": time.perf_counter() - start,
                    "cpu_seconds": cpu() - cpu0, "ngspice": version()}
        except EngineError as exc:           # no ngspice at all: safer solver settings cannot help
            errors.append(str(exc))
            return {"status": "failed", "times": None, "retried": attempt > 0, "errors": errors,
                    "engine_error": True, "seconds": time.perf_counter() - start, "cpu_seconds": cpu() - cpu0}
        except SimulationError as exc:
            errors.append(str(exc)[:500])
    return {"status": "failed", "times": None, "retried": True, "errors": errors,
            "seconds": time.perf_counter() - start, "cpu_seconds": cpu() - cpu0, "ngspice": version()}


def _task(design_path: str, t_rise_s, index: int, t_input_s, timeout_s: float, wires: str = "reduced") -> tuple:
    """One image in a worker process (or on a dask worker)."""
    _, circuit = load(design_path, t_rise_s, wires)
    return index, simulate_image(circuit, np.asarray(t_input_s), timeout_s)


def _prediction(t_out) -> int:
    from training.network import predict
    return int(predict(np.asarray(t_out, dtype=np.float64)[None, :])[0])


def compare(index: int, label: int, sim: dict, behavioural: list, t_end_s: float) -> dict:
    """The results.jsonl record of one image."""
    b_pred = _prediction(behavioural[-1])
    rec = {"index": int(index), "label": int(label), "status": sim["status"],
           "behavioural_prediction": b_pred,
           "behavioural_spikes": [int(np.isfinite(t).sum()) for t in behavioural],
           "seconds": round(sim["seconds"], 3), "cpu_seconds": round(sim["cpu_seconds"], 3),
           "retried": sim["retried"]}
    if sim["errors"]:
        rec["errors"] = sim["errors"]
    if sim.get("ngspice"):
        rec["ngspice"] = sim["ngspice"]
    if sim["status"] != "ok":
        return rec
    circuit = [np.asarray(t, dtype=np.float64) for t in sim["times"]]
    both = np.concatenate([np.isfinite(c) & np.isfinite(b) for c, b in zip(circuit, behavioural)])
    with np.errstate(invalid="ignore"):           # inf - inf where both are silent
        diff = np.concatenate([np.abs(c - b) for c, b in zip(circuit, behavioural)])
    only_one = np.concatenate([np.isfinite(c) != np.isfinite(b) for c, b in zip(circuit, behavioural)])
    d = diff[both]
    max_dt = float(d.max()) if d.size else 0.0
    mean_dt = float(d.mean()) if d.size else 0.0
    pred = _prediction(circuit[-1])
    rec.update({
        "prediction": pred, "correct": pred == int(label), "agree": pred == b_pred,
        "max_dt_s": max_dt, "mean_dt_s": mean_dt,
        "max_dt_pct_window": 100.0 * max_dt / t_end_s, "mean_dt_pct_window": 100.0 * mean_dt / t_end_s,
        "fire_mismatch": int(only_one.sum()),
        "spikes": [int(np.isfinite(t).sum()) for t in circuit],
        "times_s": [[None if not np.isfinite(x) else float(x) for x in t] for t in circuit],
    })
    return rec


_FIELDS = {"index": int, "label": int, "status": str, "behavioural_prediction": int, "seconds": float,
           "cpu_seconds": float}
_OK_FIELDS = {"prediction": int, "correct": bool, "agree": bool, "max_dt_s": float, "mean_dt_s": float,
              "fire_mismatch": int, "spikes": list}


def summarize(records: list, t_end_s: float) -> dict:
    ok = [r for r in records if r["status"] == "ok"]
    n = len(records)
    out = {"n_images": n, "n_ok": len(ok), "n_failed": n - len(ok)}
    if ok:
        out.update({
            "circuit_accuracy": float(np.mean([r["correct"] for r in ok])),
            "behavioural_accuracy": float(np.mean([r["behavioural_prediction"] == r["label"] for r in ok])),
            "agreement": float(np.mean([r["agree"] for r in ok])),
            "max_dt_s": float(max(r["max_dt_s"] for r in ok)),
            "mean_dt_s": float(np.mean([r["mean_dt_s"] for r in ok])),
            "fire_mismatch_per_image": float(np.mean([r["fire_mismatch"] for r in ok])),
            "spikes_per_layer": [float(x) for x in np.mean([r["spikes"] for r in ok], axis=0)],
        })
        out["max_dt_pct_window"] = 100.0 * out["max_dt_s"] / t_end_s
        out["mean_dt_pct_window"] = 100.0 * out["mean_dt_s"] / t_end_s
    if records:
        out["seconds_per_image"] = float(np.mean([r["seconds"] for r in records]))
        out["cpu_seconds_per_image"] = float(np.mean([r["cpu_seconds"] for r in records]))
    return out


def _provenance(records: list) -> dict:
    """provenance() with the ngspice versions that simulated these records (known also on a rerun
    that simulated nothing, or when workers did; this process's for records written before they
    carried it)."""
    versions = sorted({r["ngspice"] for r in records if r.get("ngspice")})
    here = provenance.provenance()
    return {**here, "ngspice": ", ".join(versions) if versions else here["ngspice"]}


def run(design_path, limit: int, out_dir, workers: int = 1, dask_address: str | None = None,
        settings: Settings = Settings(), data_dir=None, progress: bool = True, start: int = 0) -> dict:
    """Simulate test images start..start+limit-1 of the design's data set into out_dir.

    Everything is read and checked before out_dir is touched."""
    from hwmodel.behavioural import input_times_s, layer_times
    from netlists.ngspice import find_library
    from training.data import check_fits, load_split, select

    if dask_address:
        check_dask_address(dask_address)    # before any work: a typo fails in seconds, not at the end
    else:
        find_library()          # no ngspice: fail now with the install command, not per image
    design, circuit = load(design_path, settings.t_rise_s, settings.wires)
    check_fits(str(Path(design_path) / "design.npz"), design.g_pos, design.dataset)
    test_set = load_split(design.dataset, "test", data_dir)
    data = select(test_set, start, limit)
    images, labels = data.images, data.labels
    t_input = input_times_s(design, images)
    behavioural = layer_times(design, t_input)
    config = {"design": str(Path(design_path).resolve()), "start": int(start), "t_rise_s": settings.t_rise_s,
              "wires": settings.wires,     # literal and reduced are the same circuit: not a resume key
              "design_sha256": design.content_sha256,     # of what was loaded, not of the files now
              "data_sha256": digest(test_set.images, test_set.labels)}
    out_dir = Path(out_dir)
    with folder_lock(out_dir, "ttfs simulate"):
        results_path = out_dir / RESULTS
        done = _check_resume_record(out_dir, config, read_results(results_path, circuit.n_layers))
        todo = [k for k in range(len(labels)) if done.get(start + k, {}).get("status") != "ok"]
        bar = tqdm(total=len(labels), initial=len(labels) - len(todo), desc="ngspice images", unit="img",
                   disable=not progress)
        ok_now = []
        config_current = [bool(done)]   # _check_resume_record left simulate.json matching the results

        def record(k: int, sim: dict) -> None:
            if sim.get("engine_error") and not ok_now:
                raise EngineError(f"ngspice cannot start, no image was simulated: {sim['errors'][-1]}")
            if not config_current[0]:
                atomic_io.write_text(out_dir / CONFIG, json.dumps(config, indent=1))
                config_current[0] = True
            rec = compare(start + k, labels[k], sim, [b[k] for b in behavioural], circuit.t_end_s)
            atomic_io.append_jsonl(results_path, rec)
            done[start + k] = rec
            if rec["status"] == "ok":
                ok_now.append(k)
            bar.update(1)
            maybe_exit("simulate.after_image")

        try:
            if dask_address or workers > 1:
                path = str(Path(design_path).resolve()) if dask_address else str(design_path)
                run_tasks(_task, [(path, settings.t_rise_s, k, t_input[k], settings.timeout_s, settings.wires) for k in todo],
                          lambda result: record(*result), jobs=workers, dask_address=dask_address,
                          env=thread_env(1), name="ttfs-image")    # one BLAS thread a worker: they share the cores
            else:
                for k in todo:
                    record(k, simulate_image(circuit, t_input[k], settings.timeout_s))
        finally:
            bar.close()
        read_results(results_path, circuit.n_layers)   # one line per image again where a retry appended a second
        records = [done[start + k] for k in range(len(labels)) if start + k in done]
        summary = summarize(records, circuit.t_end_s)
        summary.update({"design": str(design_path), "workers": workers if not dask_address else None,
                        "dask": dask_address, "neuron": circuit.neuron, "scheme": circuit.scheme,
                        "layers": circuit.sizes, provenance.KEY: _provenance(records)})
        if records:
            atomic_io.write_text(out_dir / SUMMARY, json.dumps(summary, indent=1))
    return summary


def read_results(path, n_layers: int) -> dict:
    """Image index -> its record in a results.jsonl, each holding what `summarize` reads.

    Resume keys on these indices, never on the number of lines: a torn, garbled or incomplete
    line is dropped (its image is simulated again), and of two records of one image the later
    wins (an ok one over a failed one). The file is rewritten as one line per image if it held
    anything else, so later appends stay parseable."""
    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_bytes().decode(errors="replace").splitlines(keepends=True)
    done = {}
    for line in lines:
        rec = _usable_record(line, n_layers)
        if rec is None:
            continue
        old = done.get(rec["index"])
        if old is None or rec["status"] == "ok" or old["status"] != "ok":
            done[rec["index"]] = rec
    done = dict(sorted(done.items()))
    text = "".join(json.dumps(r) + "\n" for r in done.values())
    if "".join(line if line.endswith("\n") else line + "\n" for line in lines) != text:
        atomic_io.write_text(path, text)
    return done


def _usable_record(line: str, n_layers: int) -> dict | None:
    """The record of one results line, or None if it is not one `compare` wrote for this design."""
    try:
        rec = json.loads(line)
        atomic_io.check_fields(rec, _FIELDS, "record", CheckpointError)
        if rec["status"] == "ok":
            atomic_io.check_fields(rec, _OK_FIELDS, "record", CheckpointError)
            spikes = rec["spikes"]
            if len(spikes) != n_layers or not all(isinstance(x, int) and not isinstance(x, bool) for x in spikes):
                return None
    except (ValueError, RecursionError, CheckpointError):
        return None
    return rec


# Options whose results differ: another t_rise_s is another circuit. --start and --limit only pick
# which images to simulate; results are keyed by absolute image index, so any range reuses them.
_OPTIONS = ("t_rise_s",)


def _check_resume_record(out_dir: Path, config: dict, done: dict) -> dict:
    """The results in out_dir that may be reused for `config` (simulate.json): all of them while the
    design's and the data's content is unchanged; none (deleted, to be recomputed) when the same design
    folder was re-mapped or the data changed. Another design's results, or other options, are an error."""
    cfg_path = out_dir / CONFIG
    if not done:
        return done                     # nothing to protect: simulate.json is (re)written with the first result
    if not cfg_path.is_file():
        log.warning("%s: %s is missing, so its %d results cannot be checked; simulating them again",
                    out_dir, CONFIG, len(done))
        return _discard(out_dir)
    try:
        old = atomic_io.read_json(cfg_path, CheckpointError)
    except CheckpointError as exc:
        old = None
        log.warning("%s; simulating its %d results again", exc, len(done))
    if not isinstance(old, dict):
        return _discard(out_dir)
    asked = {k: config[k] for k in ("design", *_OPTIONS)}
    had = {k: old.get(k) for k in ("design", *_OPTIONS)}
    refuse = CheckpointError(f"{out_dir} holds a simulation of {had} but this run asks for {asked}; "
                             "use another --out folder or the same design and options")
    if any(had[k] != asked[k] for k in _OPTIONS):
        raise refuse
    if "design_sha256" not in old:      # written before simulate.json held fingerprints: trusted as before
        if had["design"] != asked["design"]:
            raise refuse
        atomic_io.write_text(cfg_path, json.dumps(config, indent=1))
        return done
    same_design = old["design_sha256"] == config["design_sha256"]
    if same_design and old.get("data_sha256") == config["data_sha256"]:
        if old != config:               # the same design, copied or moved
            atomic_io.write_text(cfg_path, json.dumps(config, indent=1))
        return done
    if not same_design and had["design"] != asked["design"]:
        raise refuse
    what = "the design was re-mapped" if not same_design else "the test data changed"
    log.warning("%s: %s since its %d results were computed; simulating them again", out_dir, what, len(done))
    return _discard(out_dir)


def _discard(out_dir: Path) -> dict:
    for name in (RESULTS, SUMMARY, CONFIG):
        (out_dir / name).unlink(missing_ok=True)
    return {}


def format_summary(s: dict) -> str:
    lines = [f"{s['n_images']} images ({s['n_ok']} simulated, {s['n_failed']} failed), "
             f"{s.get('neuron')} / {s.get('scheme')} {s.get('layers')}"]
    if s.get("n_ok"):
        lines += [
            f"  circuit accuracy        {100 * s['circuit_accuracy']:.2f}%",
            f"  behavioural accuracy    {100 * s['behavioural_accuracy']:.2f}%",
            f"  agreement (prediction)  {100 * s['agreement']:.2f}%",
            f"  firing-time difference  max {s['max_dt_s']:.3e} s ({s['max_dt_pct_window']:.4f}% of window), "
            f"mean {s['mean_dt_s']:.3e} s ({s['mean_dt_pct_window']:.4f}%)",
            f"  neurons firing in one model only, per image  {s['fire_mismatch_per_image']:.2f}",
            f"  spikes per layer        {[round(x, 1) for x in s['spikes_per_layer']]}",
        ]
    if "seconds_per_image" in s:
        lines.append(f"  time per image          {s['seconds_per_image']:.2f} s wall in a worker, "
                     f"{s['cpu_seconds_per_image']:.2f} s CPU")
    return "\n".join(lines)
