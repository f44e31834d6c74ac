"""The run folder other tools read: RUN/model.npz (w0 ... w{L-1}) and RUN/model.yaml.

model.yaml holds the architecture, every model constant, the data set, final test accuracy
and spikes per neuron per layer. Training state for --resume lives apart in RUN/state.npz, which is
also the run's commit record (training.trainer): model.npz, model.yaml and metrics.jsonl are rewritten
from it when a save was interrupted.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra import atomic_io, provenance
from infra.config import build
from infra.killpoints import maybe_exit
from training.config import ModelConfig
from infra.errors import CheckpointError, ConfigError

FORMAT = "ttfs-model/1"
EPOCH_KEY = "epochs_completed"
STATE = "state.npz"                # the run's training state and commit record (training.trainer)
STATE_META = "model_yaml"          # state.npz's copy of the committed model.yaml, as JSON text


@dataclass(frozen=True)
class TrainedModel:
    weights: list          # w[l] of shape (n_in, n_out), float64
    model: ModelConfig
    meta: dict             # the whole of model.yaml

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "mnist")


def model_meta(model: ModelConfig, dataset: str, extra: dict) -> dict:
    return {
        "format": FORMAT,
        "layers": list(model.layers),
        "v_th": model.v_th,
        "t_in": model.t_in,
        "t_end": model.t_end,
        "encoding": {"kind": "ttfs-pixel", "formula": "t = t_in * (1 - byte / 255)", "t_in": model.t_in},
        "time_unit": "dimensionless model time",
        "dataset": dataset,
        **extra,
        provenance.KEY: provenance.provenance(),
    }


def save_model(run_dir: str | Path, weights, meta: dict) -> None:
    run_dir = Path(run_dir)
    atomic_io.write_npz(run_dir / "model.npz", **{f"w{l}": w for l, w in enumerate(weights)})
    maybe_exit("train.after_model_npz")
    atomic_io.write_yaml(run_dir / "model.yaml", meta)


def _check_same_epoch(run_dir: Path, meta: dict) -> None:
    """model.yaml is of the epoch state.npz committed; otherwise a save was interrupted (or is under
    way) and model.npz may hold another epoch's weights than model.yaml describes."""
    try:
        with np.load(run_dir / STATE) as z:
            if STATE_META not in z.files:
                return
            committed = json.loads(str(z[STATE_META])).get(EPOCH_KEY)
    except (OSError, ValueError, zipfile.BadZipFile):
        return                         # no state (not a trained run, or damaged: --resume reports that)
    if committed != meta.get(EPOCH_KEY):
        raise CheckpointError(f"{run_dir}: epoch {committed} was not fully saved (model.yaml is of epoch "
                              f"{meta.get(EPOCH_KEY)}): the run is being saved right now, or was interrupted "
                              "while saving; retry, or finish it with 'ttfs train --resume'")


def check_weights(weights, layers=None, where: str = "weights") -> None:
    """Shapes chain (and match `layers` if given); no NaN or inf."""
    for l, w in enumerate(weights):
        if w.ndim != 2:
            raise CheckpointError(f"{where}: w{l} has shape {w.shape}, expected (n_in, n_out)")
        if not np.all(np.isfinite(w)):
            bad = int(np.size(w) - np.isfinite(w).sum())
            raise CheckpointError(f"{where}: w{l} holds {bad} NaN or inf values; retrain or restore the run")
        if l > 0 and weights[l - 1].shape[1] != w.shape[0]:
            raise CheckpointError(f"{where}: w{l - 1} has {weights[l - 1].shape[1]} outputs but w{l} "
                                  f"has {w.shape[0]} inputs; the layers do not chain")
    if layers is not None:
        shapes = [list(layers[:-1]), list(layers[1:])]
        got = [[w.shape[0] for w in weights], [w.shape[1] for w in weights]]
        if shapes != got:
            raise CheckpointError(f"{where}: weight shapes {[w.shape for w in weights]} do not match "
                                  f"layers {list(layers)} in model.yaml")


MODEL_KEYS = ("layers", "v_th", "t_in", "t_end")   # the model constants model.yaml and design.yaml hold


def model_config(data: dict) -> ModelConfig:
    """ModelConfig from a file's `layers`, `v_th`, `t_in`, `t_end` (all required) through the config
    loader: a missing, mistyped or non-finite value, or one out of ModelConfig's ranges (v_th > 0,
    t_end > t_in > 0, positive integer layer sizes), is a ConfigError naming the key."""
    missing = [k for k in MODEL_KEYS if k not in data]   # (ModelConfig has defaults for them)
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required but missing")
    return build(ModelConfig, data, "model")


def load_model(run_dir: str | Path) -> TrainedModel:
    """Read and check a run folder; errors say which file and key are wrong (`model_config` checks
    model.yaml's constants, then the weights must be finite and match its layers)."""
    run_dir = Path(run_dir)
    npz_path, yaml_path = run_dir / "model.npz", run_dir / "model.yaml"
    for p in (npz_path, yaml_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: not found; is {run_dir} a run folder written by 'ttfs train'?")
    meta = atomic_io.read_yaml(yaml_path, CheckpointError)
    if not isinstance(meta, dict) or "layers" not in meta:
        raise CheckpointError(f"{yaml_path}: missing 'layers'; not a model.yaml written by 'ttfs train'")
    try:
        model = model_config({k: meta[k] for k in MODEL_KEYS if k in meta})
    except ConfigError as exc:
        raise CheckpointError(f"{yaml_path}: bad model constants ({exc}); retrain or restore the run") from None
    arrays = atomic_io.read_npz(npz_path, CheckpointError, "retrain or restore the run")
    names = sorted((k for k in arrays if k[:1] == "w" and k[1:].isascii() and k[1:].isdigit()), key=lambda k: int(k[1:]))
    weights = [arrays[k] for k in names]
    if [f"w{l}" for l in range(len(weights))] != names or not weights:
        raise CheckpointError(f"{npz_path}: expected arrays w0 ... w{{L-1}}, found {names}")
    _check_same_epoch(run_dir, meta)
    check_weights(weights, model.layers, str(npz_path))
    return TrainedModel(weights=weights, model=model, meta=meta)
