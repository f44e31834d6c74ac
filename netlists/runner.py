"""`ttfs simulate`: circuit-level inference of N test images, resumable, in parallel processes.

Each image is simulated in ngspice layer by layer (netlists/simulate.py) and compared with the
behavioural model (hwmodel.behavioural.layer_times). One JSON line per image goes to
SIM/results.jsonl as soon as it is done; a rerun skips the images already there. A failed image
(convergence failure, timeout) is retried once with safer solver settings, then recorded with
`"status": "failed"` and the run goes on.

Parallelism: worker processes (ngspice's shared library is not reentrant, so one ngspice per
process, each in its own server process, netlists/ngspice.py; every call holds a process-wide
lock), or a dask.distributed cluster given by address (best with one thread per worker,
`dask worker ADDRESS --nthreads 1`).
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from netlists.circuit import Circuit, circuit_from_design
from netlists.simulate import FAST, SAFE, simulate_network
from infra import atomic_io
from infra.errors import CheckpointError, ConfigError, SimulationError

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
CONFIG = "simulate.json"

_LOCK = threading.Lock()          # one ngspice call at a time in this process
_CACHE: dict = {}                 # design path -> (design, circuit), per worker process


@dataclass(frozen=True)
class Settings:
    t_rise_s: float | None = None      # row-driver edge; None: 1e-3 * time_scale_s
    timeout_s: float = 900.0           # per image and attempt


def load(design_path: str, t_rise_s: float | None = None):
    """(design, circuit) for a design folder, cached per process."""
    key = (str(design_path), t_rise_s)
    if key not in _CACHE:
        from hwmodel.design import load_design
        design = load_design(design_path)
        _CACHE[key] = (design, circuit_from_design(design, t_rise_s))
    return _CACHE[key]


def input_times(design, images) -> np.ndarray:
    """Input spike times in seconds: training.encoding.encode_pixels(image, t_in) * time_scale_s."""
    from training.encoding import encode_pixels
    return encode_pixels(images, design.model.t_in) * design.time_scale_s


def simulate_image(circuit: Circuit, t_input_s: np.ndarray, timeout_s: float = 900.0) -> dict:
    """Circuit-level firing times of one image, retrying once with safer options on failure."""
    from netlists import ngspice

    def cpu() -> float:      # this process plus its ngspice server
        ses = ngspice._SESSION
        return time.process_time() + (ses.cpu_seconds() if ses is not None else 0.0)

    start, cpu0 = time.perf_counter(), cpu()
    errors = []
    for attempt, settings in enumerate((FAST, SAFE)):
        try:
            with _LOCK:
                times = simulate_network(circuit, t_input_s, settings, timeout_s=timeout_s)
            return {"status": "ok", "times": [t.tolist() for t in times], "retried": attempt > 0,
                    "errors": errors, "seconds": time.perf_counter() - start,
                    "cpu_seconds": cpu() - cpu0}
        except SimulationError as exc:
            errors.append(str(exc)[:500])
    return {"status": "failed", "times": None, "retried": True, "errors": errors,
            "seconds": time.perf_counter() - start, "cpu_seconds": cpu() - cpu0}


def _task(design_path: str, t_rise_s, index: int, t_input_s, timeout_s: float) -> tuple:
    """One image in a worker process (or on a dask worker)."""
    _, circuit = load(design_path, t_rise_s)
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


def read_results(path, n_layers: int) -> list[dict]:
    """The records of a results.jsonl, each checked to hold what `summarize` reads (a damaged
    file is a CheckpointError naming the line, see infra.atomic_io.read_jsonl)."""
    records = atomic_io.read_jsonl(path, CheckpointError, _FIELDS)
    for n, rec in enumerate(records, 1):
        if rec["status"] == "ok":
            where = f"{path}: record {n} (image {rec['index']})"
            atomic_io.check_fields(rec, _OK_FIELDS, where, CheckpointError)
            spikes = rec["spikes"]
            if len(spikes) != n_layers or not all(isinstance(x, int) and not isinstance(x, bool) for x in spikes):
                raise CheckpointError(f"{where}: 'spikes' should be {n_layers} counts, got {spikes!r:.60}; "
                                      f"{atomic_io.DAMAGED_LINE}")
    return records


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


def run(design_path, limit: int, out_dir, workers: int = 1, dask_address: str | None = None,
        settings: Settings = Settings(), data_dir=None, progress: bool = True, start: int = 0) -> dict:
    """Simulate test images start..start+limit-1 of the design's data set into out_dir."""
    from hwmodel.behavioural import layer_times
    from netlists.ngspice import find_library
    from training.data import check_fits, load_split, select

    if dask_address:
        check_dask_address(dask_address)    # before any work: a typo fails in seconds, not at the end
    else:
        find_library()          # no ngspice: fail now with the install command, not per image
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"design": str(Path(design_path).resolve()), "start": int(start),
              "t_rise_s": settings.t_rise_s}
    cfg_path = out_dir / CONFIG
    if cfg_path.exists():
        old = atomic_io.read_json(cfg_path, CheckpointError, "delete it to start this simulation afresh")
        if old != config:
            raise CheckpointError(f"{out_dir} holds a simulation of {old} but this run asks for {config}; "
                                  "use another --out folder or the same design and options")
    else:
        atomic_io.write_text(cfg_path, json.dumps(config, indent=1))

    design, circuit = load(design_path, settings.t_rise_s)
    check_fits(str(Path(design_path) / "design.npz"), design.g_pos, design.dataset)
    data = select(load_split(design.dataset, "test", data_dir), start, limit)
    images, labels = data.images, data.labels
    t_input = input_times(design, images)
    behavioural = layer_times(design, t_input)
    results_path = out_dir / RESULTS
    done = {r["index"]: r for r in read_results(results_path, circuit.n_layers)}
    if results_path.exists():
        _drop_torn_tail(results_path, len(done))
    todo = [k for k in range(len(labels)) if start + k not in done]
    bar = tqdm(total=len(labels), initial=len(labels) - len(todo), desc="ngspice images", unit="img",
               disable=not progress)

    def record(k: int, sim: dict) -> None:
        rec = compare(start + k, labels[k], sim, [b[k] for b in behavioural], circuit.t_end_s)
        atomic_io.append_jsonl(results_path, rec)
        done[start + k] = rec
        bar.update(1)

    try:
        if dask_address:
            _run_dask(dask_address, design_path, settings, todo, t_input, record)
        elif workers <= 1:
            for k in todo:
                record(k, simulate_image(circuit, t_input[k], settings.timeout_s))
        else:
            _run_pool(workers, design_path, settings, todo, t_input, record)
    finally:
        bar.close()
    records = [done[start + k] for k in range(len(labels)) if start + k in done]
    summary = summarize(records, circuit.t_end_s)
    summary.update({"design": str(design_path), "workers": workers if not dask_address else None,
                    "dask": dask_address, "neuron": circuit.neuron, "scheme": circuit.scheme,
                    "layers": circuit.sizes})
    atomic_io.write_text(out_dir / SUMMARY, json.dumps(summary, indent=1))
    return summary


def _drop_torn_tail(path: Path, n_good: int) -> None:
    """Rewrite the file without an incomplete last line left by a crash (so appends stay parseable)."""
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) != n_good or (lines and not lines[-1].endswith("\n")):
        atomic_io.write_text(path, "".join(line if line.endswith("\n") else line + "\n"
                                           for line in lines[:n_good]))


def _run_pool(workers: int, design_path, settings: Settings, todo, t_input, record) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    # spawn: a fresh interpreter per worker, so no ngspice state or thread is inherited by fork.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_task, str(design_path), settings.t_rise_s, k, t_input[k], settings.timeout_s)
                   for k in todo]
        try:
            for fut in as_completed(futures):
                k, sim = fut.result()
                record(k, sim)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)   # images in flight are redone on resume
            raise


DASK_CONNECT_TIMEOUT_S = 5.0
_DASK_ADDRESS = re.compile(r"(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")


def check_dask_address(address: str, timeout_s: float = DASK_CONNECT_TIMEOUT_S) -> None:
    """`--dask ADDRESS` is [tcp:// or tls://]HOST:PORT and something listens there; else a
    ConfigError naming the flag, within `timeout_s`."""
    m = _DASK_ADDRESS.fullmatch(address)
    if not m or not 1 <= int(m.group(3)) <= 65535:
        raise ConfigError(f"--dask {address!r}: expected a scheduler address tcp://HOST:PORT, "
                          "e.g. tcp://127.0.0.1:8786 (what 'dask scheduler' prints)")
    host, port = m.group(2).strip("[]"), int(m.group(3))
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"--dask {address}: no scheduler answers at {m.group(2)}:{port} "
                          f"({exc.strerror or str(exc) or type(exc).__name__}); start one with 'dask scheduler' and workers "
                          "with 'dask worker ADDRESS --nthreads 1', or check the address") from None


def _run_dask(address: str, design_path, settings: Settings, todo, t_input, record) -> None:
    from dask.distributed import Client, as_completed
    with Client(address, timeout=DASK_CONNECT_TIMEOUT_S) as client:
        futures = [client.submit(_task, str(Path(design_path).resolve()), settings.t_rise_s, k, t_input[k],
                                 settings.timeout_s, key=f"ttfs-image-{os.getpid()}-{k}", pure=False)
                   for k in todo]
        try:
            for fut in as_completed(futures):
                k, sim = fut.result()
                record(k, sim)
        except BaseException:
            client.cancel(futures)
            raise


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
