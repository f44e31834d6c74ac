"""Mini-batch Adam training of a TTFS network into a resumable run folder.

RUN/config.yaml   the resolved config
RUN/metrics.jsonl one line per epoch
RUN/state.npz     weights + optimiser state (+ weight average) after the last finished epoch (for --resume)
RUN/model.npz, RUN/model.yaml   the checkpoint other tools read (training.checkpoint): the weights
                  the run evaluates, i.e. the moving average over steps when train.ema_decay is set
RUN/hw.yaml       the hardware config the run trains for (`ttfs train --hw`; absent for an ideal run),
                  also recorded in model.yaml under `hw`, with the neuron static power its energy
                  term counts (`static_power_w`, W; a resumed run keeps it)
A run starts from the config's random initialisation, or from another run's weights
(train.init_from: fine-tuning, e.g. adding a regulariser to a trained network).
An epoch is committed by one atomic replace of state.npz, which holds everything of the epoch (also
model.yaml's contents and every metrics record); model.npz, model.yaml and metrics.jsonl follow and
are rebuilt from state.npz on --resume when a kill stopped the save between files, so a run is
always at one epoch, all of it. The folder is locked while training (infra.folder_lock), and a
folder holding anything but this run's files is refused. A resumed run draws the same shuffles (and, with
train.shift_px and train.flip, the same translations and mirror images) as an uninterrupted one
(epoch e draws from seed (seed, e)), so it ends with the same weights.
"""
from __future__ import annotations

import dataclasses
import json
import math
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from infra import atomic_io
from infra.folder_lock import folder_lock, is_temporary
from infra.killpoints import maybe_exit
from infra.threads import ThreadCountChooser
from training import checkpoint, energy_term, network
from training.chip_layer import ChipView
from training.config import RunConfig
from training.augment import augment_images
from training.data import N_CLASSES, load_split
from training.encoding import encode_pixels
from infra.errors import CheckpointError, ConfigError
from training.evaluate import evaluate, spike_times, summarize
from training.optim import Adam, WeightAverage

log = logging.getLogger(__name__)


def config_to_dict(cfg) -> dict:
    def conv(x):
        if isinstance(x, tuple):
            return [conv(v) for v in x]
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        return x
    return conv(dataclasses.asdict(cfg))


def train_epoch(weights, opt: Adam, cfg: RunConfig, t_input, labels, epoch: int, progress: bool = True,
                average: WeightAverage | None = None, view: ChipView | None = None) -> dict:
    """One pass over the training set in the order drawn from (seed, epoch); updates weights (and
    their running average) in place. Train metrics are those of the weights being stepped (on the
    chip drawn for each step, when training for a chip: `view`)."""
    model, tc = cfg.model, cfg.train
    strengths = cfg.reg.strengths(model.n_hidden_layers)
    perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(labels))
    opt.lr = tc.epoch_lr(epoch)
    n_layers = len(weights)
    fire_coef = cfg.loss.fire_coef(epoch)
    energy_coef = cfg.reg.energy_strength
    sums = {"loss": 0.0, "reg": 0.0, "fire_penalty": 0.0, "energy_nj": 0.0, "static_nj": 0.0, "correct": 0, "n": 0,
            "fired": np.zeros(n_layers)}
    bar = tqdm(range(0, len(perm), tc.batch_size), desc=f"epoch {epoch + 1}/{tc.epochs}",
               disable=not progress, unit="batch", leave=False)
    threads = ThreadCountChooser()
    steps_per_epoch = -(-len(perm) // tc.batch_size)
    for batch, start in enumerate(bar):
        idx = perm[start:start + tc.batch_size]
        b = len(idx)
        threads.begin()
        chip = None if view is None else view.draw(weights, epoch * steps_per_epoch + batch)
        states = network.forward(weights, t_input[idx], model, tc.backend, chip)
        loss, delta = network.output_loss(states[-1].t_out, labels[idx], model, cfg.loss)
        penalty = (network.fire_penalty(weights, states, model, fire_coef / b, cfg.loss.fire_penalty_on, tc.backend)
                   if fire_coef > 0 else None)
        energy = (energy_term.conduction_energy(conduction_form(view, chip), states[0].t_in,
                                                [s.t_out for s in states], model.t_end, energy_coef / b, tc.backend)
                  if energy_coef > 0 else None)
        back = network.backprop(weights, states, delta / b, model, tc.backend,
                                cfg.reg.kind, [s / b for s in strengths], cfg.reg.v_hat, penalty,
                                None if energy is None else energy.gt)
        grads, reg = back.gw, back.reg
        if energy is not None:
            grads = view.pull_back(weights, chip, grads, back.glam, energy.g_rates)
            sums["energy_nj"] += float(energy.conduction_nj.sum())
            sums["static_nj"] += float(energy.static_nj.sum())
        elif view is not None:
            grads = view.pull_back(weights, chip, grads, back.glam)
        opt.step(weights, grads)
        threads.end(b)
        if average is not None:
            average.update(weights)
        sums["loss"] += float(loss.sum())
        sums["reg"] += float(reg.sum()) * b
        if penalty is not None:
            sums["fire_penalty"] += float(penalty.values.sum()) * b
        sums["correct"] += int((network.predict(states[-1].t_out) == labels[idx]).sum())
        sums["n"] += b
        sums["fired"] += [np.isfinite(s.t_out).mean() * b for s in states]
        n = sums["n"]
        hidden = sums["fired"][:-1] / n
        bar.set_postfix(loss=f"{sums['loss'] / n:.3f}", acc=f"{sums['correct'] / n:.3f}",
                        spk=f"{hidden.mean() if len(hidden) else 0:.3f}")
    n = sums["n"]
    fired = sums["fired"] / n
    extra = {"train_fire_penalty": sums["fire_penalty"] / n} if cfg.loss.fire_penalty > 0 else {}
    if energy_coef > 0:
        extra["train_energy_nj"] = sums["energy_nj"] / n
        if view.static_power_w > 0:
            extra["train_static_nj"] = sums["static_nj"] / n
    return {"train_loss": sums["loss"] / n, "train_reg": sums["reg"] / n, **extra, "train_accuracy": sums["correct"] / n,
            "train_spikes_per_neuron": fired[:-1].tolist(), "train_output_spikes_per_neuron": float(fired[-1])}


def conduction_form(view: ChipView | None, layers):
    """The energy form (conduction and static) of the chip layers `layers` (ChipView.conduction); a ConfigError
    naming reg.energy_strength when there is no chip or its conduction is not of that form."""
    form = None if view is None else view.conduction(layers)
    if form is None:
        why = ("the run trains for no chip: give --hw HW (or a hw: section in the config)" if view is None else
               "the chip's conduction is not the virtual-ground form it differentiates (hw.neuron passive): "
               "train for hw.neuron integrator")
        raise ConfigError(f"reg.energy_strength: the energy term needs the chip's conduction energy, but {why}, "
                          "or set reg.energy_strength=0")
    return form


def mean_energy_nj(view: ChipView, layers, t_input, layer_times, t_end: float, backend: str,
                   batch_size: int = 1000) -> dict:
    """The metrics of a chip's energy per image over the given spike times (nJ, means): `energy_nj`
    the conduction, `static_nj` the neurons' static energy (when the view counts a static power);
    {} when the chip's conduction is not of the form training differentiates."""
    form = view.conduction(layers)
    if form is None:
        return {}
    cond = static = 0.0
    for start in range(0, len(t_input), batch_size):
        part = slice(start, start + batch_size)
        term = energy_term.conduction_energy(form, t_input[part], [t[part] for t in layer_times], t_end,
                                             backend=backend)
        cond += float(term.conduction_nj.sum())
        static += float(term.static_nj.sum())
    n = max(len(t_input), 1)
    return {"energy_nj": cond / n, **({"static_nj": static / n} if view.static_power_w > 0 else {})}


STATE = checkpoint.STATE
HW_FILE = "hw.yaml"
STATIC_KEY = "static_power_w"      # model.yaml: one neuron's static power (W) the chip run's energy term counted
RUN_FILES = ("config.yaml", STATE, "model.npz", "model.yaml", "metrics.jsonl", HW_FILE)


def _metrics_text(history: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in history)


def _save_epoch(run: Path, cfg: RunConfig, weights, opt: Adam, epoch: int, history: list,
                average: WeightAverage | None, model_weights, hw: dict | None = None,
                static_power_w: float | None = None) -> None:
    """Commit epoch `epoch` (0-based): state.npz, replaced in one step, holds all of it (training
    state, the model's weights and model.yaml, every metrics record); model.npz, model.yaml and
    metrics.jsonl are then written from the same values (and rebuilt from state.npz by `_recover`
    if a kill stops this in between)."""
    record = history[-1]
    extra = {
        "epochs_completed": epoch + 1,
        "test_accuracy": record["test_accuracy"],
        "spikes_per_neuron": record["spikes_per_neuron"],
        "spikes_per_neuron_mean": record["spikes_per_neuron_mean"],
        "output_spikes_per_neuron": record["output_spikes_per_neuron"],
        "reg": config_to_dict(cfg.reg),
        "seed": cfg.seed,
        **({} if hw is None else {"hw": hw}),
        **({} if static_power_w is None else {STATIC_KEY: static_power_w}),
    }
    meta = checkpoint.model_meta(cfg.model, cfg.data.dataset, extra)
    atomic_io.write_yaml(run / "config.yaml", config_to_dict(cfg))
    averaged = {} if average is None else {f"model_w{l}": w for l, w in enumerate(model_weights)}
    atomic_io.write_npz(run / STATE, epoch=np.array(epoch), **opt.state(),
                        **(average.state() if average is not None else {}),
                        **{f"w{l}": w for l, w in enumerate(weights)}, **averaged,
                        **{checkpoint.STATE_META: np.array(json.dumps(meta))}, history=np.array(json.dumps(history)))
    maybe_exit("train.after_state")
    _write_views(run, model_weights, meta, history)


def _write_views(run: Path, model_weights, meta: dict, history: list) -> None:
    checkpoint.save_model(run, model_weights, meta)
    maybe_exit("train.after_model_yaml")
    atomic_io.write_text(run / "metrics.jsonl", _metrics_text(history))


def _read_state(run: Path) -> dict | None:
    path = Path(run) / STATE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc}); the run's training state is damaged: "
                              "train into another --out") from None


def _model_weights(state: dict) -> list:
    """The weights model.npz holds for this state: the average when the run averages, else the last."""
    n_layers = sum(1 for k in state if k.startswith("w") and k[1:].isdigit())
    prefix = "model_w" if "model_w0" in state else "w"
    return [state[f"{prefix}{l}"] for l in range(n_layers)]


def _views_match(run: Path, state: dict) -> bool:
    """model.npz, model.yaml and metrics.jsonl are those of the epoch state.npz committed."""
    done = int(state["epoch"]) + 1
    try:
        meta = atomic_io.read_yaml(run / "model.yaml", CheckpointError)
        metrics = (run / "metrics.jsonl").read_text()
        with np.load(run / "model.npz") as z:
            saved = [z[f"w{l}"] for l in range(len(z.files))]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, CheckpointError):
        return False
    if not isinstance(meta, dict) or meta.get(checkpoint.EPOCH_KEY) != done:
        return False
    if "history" not in state:            # saved before state.npz held the whole epoch
        records = atomic_io.read_jsonl(run / "metrics.jsonl")
        return bool(records) and records[-1].get("epoch") == done
    model = _model_weights(state)
    return (len(saved) == len(model) and all(np.array_equal(a, b) for a, b in zip(saved, model))
            and metrics == _metrics_text(json.loads(str(state["history"]))))


def _recover(run: Path, state: dict) -> list:
    """The metrics records of the committed epochs; rewrites model.npz, model.yaml and metrics.jsonl
    from state.npz where a kill left them from an earlier epoch (or with more or fewer lines)."""
    done = int(state["epoch"]) + 1
    if "history" not in state:            # an older run: its metrics.jsonl up to the committed epoch
        return [r for r in atomic_io.read_jsonl(run / "metrics.jsonl") if r.get("epoch", done + 1) <= done]
    history = json.loads(str(state["history"]))
    if not _views_match(run, state):
        _write_views(run, _model_weights(state), json.loads(str(state[checkpoint.STATE_META])), history)
    return history


def _check_out_folder(run: Path, cfg: RunConfig, resume: bool) -> None:
    """Refuse a folder holding anything but this run's own files: a folder with training state needs
    --resume; run files without state (another run's model, say) or other files are never overwritten."""
    if not run.is_dir():
        return
    names = sorted(p.name for p in run.iterdir() if not is_temporary(p.name))
    if not names:
        return
    foreign = [n for n in names if n not in RUN_FILES]
    if foreign:
        raise CheckpointError(f"{run}: holds {', '.join(foreign[:5])}, which are not files of a 'ttfs train' run; "
                              "train into an empty or new --out")
    if STATE in names:
        if not resume:
            raise CheckpointError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
        return
    names = [n for n in names if n != HW_FILE]      # written before the first epoch by a run for a chip
    if not names:
        return
    if names != ["config.yaml"]:
        raise CheckpointError(f"{run}: holds {', '.join(names)} but no {STATE}: another run's files, which cannot "
                              "be resumed and are not overwritten; choose another --out (or remove them)")
    diff = config_differences(run, cfg)      # a run stopped in its first epoch: only its config
    if diff:
        raise CheckpointError(f"{run}: holds the config.yaml of another run (differs in {', '.join(diff)}); "
                              "choose another --out")


_MAY_CHANGE_ON_RESUME = {("train", "epochs"), ("data", "data_dir")}


def config_differences(run: Path, cfg: RunConfig) -> list[str]:
    """Keys (`train.lr`, `seed`) in which `cfg` differs from the config saved in `run`, apart from
    those a resumed run may change (train.epochs, unless the cosine schedule spans them); a key
    added since the run was saved counts as its default."""
    may_change = _MAY_CHANGE_ON_RESUME - ({("train", "epochs")} if cfg.train.lr_schedule == "cosine" else set())
    path = Path(run) / "config.yaml"
    saved = atomic_io.read_yaml(path, CheckpointError, "train into another --out")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: expected the mapping of a run config, got {type(saved).__name__}; "
                              "train into another --out")
    now = config_to_dict(cfg)
    default = config_to_dict(RunConfig(model=cfg.model))
    diff = sorted(f"{sec}.{k}" for sec in now if isinstance(now[sec], dict)
                  for k in now[sec] if saved.get(sec, {}).get(k, default[sec][k]) != now[sec][k]
                  and (sec, k) not in may_change)
    if now["seed"] != saved.get("seed"):
        diff.append("seed")
    return diff


def _check_resume_config(run: Path, cfg: RunConfig) -> None:
    diff = config_differences(run, cfg)
    if diff:
        raise CheckpointError(f"{run}: cannot resume, the config differs from the saved one in {', '.join(diff)}; "
                              "resume with the same config (only train.epochs may grow, and not with "
                              "train.lr_schedule cosine, whose rates depend on it) or use a new --out")


def run_is_complete(run: str | Path, epochs: int) -> bool:
    """`epochs` epochs committed, and the files other tools read are those of the last one."""
    state = _read_state(Path(run))
    return state is not None and int(state["epoch"]) + 1 >= epochs and _views_match(Path(run), state)


def initial_weights(cfg: RunConfig) -> list[np.ndarray]:
    """Drawn from the config's initialisation, or the saved weights (model.npz: the average, if that
    run averaged) of run `train.init_from`, which must have the same layers and neuron constants
    (v_th, t_in, t_end)."""
    if cfg.train.init_from is None:
        return network.init_weights(cfg.model.layers, cfg.model.init_mean_gain, cfg.model.init_std_gain, cfg.seed)
    src = checkpoint.load_model(cfg.train.init_from)
    mine = cfg.model
    theirs = src.model
    diff = [k for k in ("layers", "v_th", "t_in", "t_end") if getattr(mine, k) != getattr(theirs, k)]
    if diff:
        raise ConfigError(f"train.init_from: {cfg.train.init_from} has {', '.join(f'{k} {getattr(theirs, k)}' for k in diff)}"
                          f" but this run has {', '.join(f'{k} {getattr(mine, k)}' for k in diff)}; start from a run "
                          "with the same model section")
    return [w.copy() for w in src.weights]


def check_output_layer(cfg: RunConfig) -> None:
    """One output neuron per class at least: the loss indexes the outputs by label (RunConfig
    checks the input width)."""
    n_out = cfg.model.layers[-1]
    if n_out < N_CLASSES:
        raise ConfigError(f"model.layers: the output layer has {n_out} neurons but {cfg.data.dataset} has "
                          f"{N_CLASSES} classes; set the last entry of model.layers to {N_CLASSES}")


def train(cfg: RunConfig, out: str | Path, resume: bool = False, progress: bool = True,
          view: ChipView | None = None) -> dict:
    """Train into run folder `out`; returns the last epoch's metrics. Reports each epoch (logging, INFO).

    view: train for a chip (training.chip_layer): every step runs on the chip `view` draws, every
    epoch is evaluated on its nominal chip, and its hardware config (`view.record()`) is saved as
    RUN/hw.yaml; a resumed run must train for the same one."""
    run = Path(out)
    check_output_layer(cfg)
    if cfg.reg.energy_strength > 0 and view is None:
        conduction_form(None, None)
    hw = None if view is None else view.record()
    train_set = load_split(cfg.data.dataset, "train", cfg.data.data_dir, cfg.data.train_limit)
    test_set = load_split(cfg.data.dataset, "test", cfg.data.data_dir, cfg.data.test_limit)
    weights = initial_weights(cfg)
    with folder_lock(run, "ttfs train"):
        _check_out_folder(run, cfg, resume)
        _check_hw(run, hw, None if view is None else view.canonical)
        check_static_power(run, cfg, view)
        return _train_locked(cfg, run, resume, progress, train_set, test_set, weights, view, hw)


def saved_hw(run: str | Path) -> dict | None:
    """The hardware config a run trains for, or None for an ideal run: from the committed epoch
    (state.npz's copy of model.yaml, `hw`) when there is one, else from model.yaml (a folder of
    the checkpoint alone), else from hw.yaml (a run stopped before its first epoch)."""
    run = Path(run)
    state = run / STATE
    if state.is_file():
        try:
            with np.load(state, allow_pickle=False) as z:
                if checkpoint.STATE_META in z.files:
                    return json.loads(str(z[checkpoint.STATE_META])).get("hw")
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"{state}: cannot be read ({exc}); the run's training state is damaged: "
                                  "train into another --out") from None
    for name, key in (("model.yaml", "hw"), (HW_FILE, None)):
        path = run / name
        if path.is_file():
            data = atomic_io.read_yaml(path, CheckpointError, "train into another --out")
            if key is not None:
                data = data.get(key) if isinstance(data, dict) else None
                if data is None:
                    return None
            if not isinstance(data, dict):
                raise CheckpointError(f"{path}: expected a mapping of hardware keys, got {type(data).__name__}; "
                                      "train into another --out")
            return data
    return None


def saved_static_power_w(run: str | Path) -> float | None:
    """The static power per neuron (W) the committed epochs of chip run `run` counted (model.yaml's
    static_power_w; 0 for a run saved before the energy term counted it, or for an ideal run),
    None when no epoch is committed."""
    state = _read_state(Path(run))
    if state is None:
        return None
    meta = json.loads(str(state[checkpoint.STATE_META])) if checkpoint.STATE_META in state else {}
    saved = meta.get(STATIC_KEY, 0.0)
    if not (isinstance(saved, (int, float)) and math.isfinite(saved) and saved >= 0):
        raise CheckpointError(f"{run}: its state records {STATIC_KEY} {saved!r}, not a power >= 0 in W; the run's "
                              "training state is damaged: train into another --out")
    return float(saved)


def check_static_power(run: Path, cfg: RunConfig, view: ChipView | None) -> None:
    """A chip run resumed (or a sweep point kept) counts the static power per neuron its committed
    epochs counted. Without an energy term (reg.energy_strength 0) the power changes no weight, only
    the logged static_nj: the view then takes the run's own power; with one, a different power is
    a CheckpointError naming --energy (ttfs train, ttfs sweep)."""
    saved = None if view is None else saved_static_power_w(run)
    if saved is None:
        return
    if cfg.reg.energy_strength == 0 or math.isclose(saved, view.static_power_w, rel_tol=1e-12, abs_tol=0.0):
        view.static_power_w = saved      # the run's own number, to the bit
        return
    raise CheckpointError(f"{run}: cannot resume, its energy term counted a static power of {saved!r} W per neuron "
                          f"and this command's --energy gives {view.static_power_w!r} W; give the --energy it "
                          "trained with (ttfs train without --energy reuses it) or use a new --out")


def hw_change(run: Path, saved: dict | None, hw: dict | None) -> tuple[str, str]:
    """(what run trains for, what `hw` asks for) in words, for the error when the two differ."""
    have = "no chip (an ideal run)" if saved is None else f"the chip in {Path(run) / HW_FILE}"
    if saved is not None and hw is not None:
        keys = sorted(k for k in set(saved) | set(hw) if saved.get(k) != hw.get(k))
        return have, f"another chip (hw.{', hw.'.join(keys)} differ)"
    return have, "no chip" if hw is None else "a chip"


def same_hw(saved: dict | None, hw: dict | None, canonical=None) -> tuple[dict | None, bool]:
    """(saved as `canonical` rewrites it, whether it is `hw`): canonical is the view's
    (ChipView.canonical), filling keys added since the run was saved with their defaults."""
    if saved is not None and canonical is not None:
        try:
            saved = canonical(saved)
        except ConfigError as exc:
            raise CheckpointError(f"the run's saved hardware config no longer loads ({exc}); train into "
                                  "another --out") from None
    return saved, saved == hw


def _check_hw(run: Path, hw: dict | None, canonical=None) -> None:
    """A resumed run trains for the chip of its committed epochs (or for none, as it started), and
    its hw.yaml is rewritten from them if a kill or a hand removed or changed it; a run without
    committed epochs (re)writes its hw.yaml (or drops a stale one) before the first."""
    if (run / STATE).is_file():
        saved, same = same_hw(saved_hw(run), hw, canonical)
        if not same:
            have, want = hw_change(run, saved, hw)
            raise CheckpointError(f"{run}: cannot resume, it trains for {have} and this command for {want}; "
                                  f"resume with the same --hw (or none) or use a new --out")
        on_disk = run / HW_FILE
        if hw is not None and (not on_disk.is_file() or atomic_io.read_yaml(on_disk, CheckpointError) != hw):
            atomic_io.write_yaml(on_disk, hw)
    elif hw is not None:
        atomic_io.write_yaml(run / HW_FILE, hw)
    elif (run / HW_FILE).is_file():
        (run / HW_FILE).unlink()


def _train_locked(cfg: RunConfig, run: Path, resume: bool, progress: bool, train_set, test_set, weights,
                  view: ChipView | None = None, hw: dict | None = None) -> dict:
    t_train = None if cfg.train.shift_px or cfg.train.flip else encode_pixels(train_set.images, cfg.model.t_in)
    opt = Adam([w.shape for w in weights], cfg.train.lr, lr_scales=cfg.train.lr_layer_scale)
    average = None if cfg.train.ema_decay is None else WeightAverage([w.shape for w in weights], cfg.train.ema_decay)
    first_epoch = 0
    history: list = []
    state = _read_state(run) if resume else None
    if state is not None:
        _check_resume_config(run, cfg)
        history = _recover(run, state)
        weights = [np.array(state[f"w{l}"]) for l in range(len(weights))]
        opt.load_state(state)
        if average is not None:
            average.load_state(state)
        first_epoch = int(state["epoch"]) + 1
        log.info("resuming %s after epoch %d", run, first_epoch)

    record = None
    for epoch in range(first_epoch, cfg.train.epochs):
        t0 = time.perf_counter()
        record = {"epoch": epoch + 1, "lr": cfg.train.epoch_lr(epoch)}
        if view is not None and epoch == first_epoch:   # later epochs: the last epoch's evaluation did
            view.refresh(weights)
        t_epoch = t_train
        if t_epoch is None:
            moved = augment_images(train_set.images, cfg.train.shift_px, cfg.train.flip, cfg.seed, epoch)
            t_epoch = encode_pixels(moved, cfg.model.t_in)
        record.update(train_epoch(weights, opt, cfg, t_epoch, train_set.labels, epoch, progress, average, view))
        model_weights = weights if average is None else average.weights()
        if view is not None:            # the saved weights' own wires: the chip `ttfs eval` evaluates
            view.refresh(model_weights)
        nominal = None if view is None else view.nominal(model_weights)
        t_test, test_times = spike_times(model_weights, cfg.model, test_set.images, backend=cfg.train.backend,
                                         chip=nominal)
        test = summarize(test_times, test_set.labels)
        energy = ({} if view is None else
                  mean_energy_nj(view, nominal, t_test, test_times, cfg.model.t_end, cfg.train.backend))
        if average is not None:
            if view is not None:
                view.refresh(weights)
            raw = evaluate(weights, cfg.model, test_set.images, test_set.labels, cfg.train.backend,
                           None if view is None else view.nominal(weights))
            record["test_accuracy_last_weights"] = raw["accuracy"]
        record.update({"test_accuracy": test["accuracy"], "spikes_per_neuron": test["spikes_per_neuron"],
                       "spikes_per_neuron_mean": test["spikes_per_neuron_mean"],
                       "output_spikes_per_neuron": test["output_spikes_per_neuron"],
                       "silent_neurons": test["silent_neurons"],
                       **energy,
                       "seconds": time.perf_counter() - t0})
        history.append(record)
        _save_epoch(run, cfg, weights, opt, epoch, history, average, model_weights, hw,
                    None if view is None else view.static_power_w)
        log.info(f"epoch {epoch + 1}/{cfg.train.epochs}: loss {record['train_loss']:.4f}  train acc "
                 f"{record['train_accuracy']:.4f}  test acc {record['test_accuracy']:.4f}  spikes/neuron "
                 f"{record['spikes_per_neuron_mean']:.3f} {[round(s, 3) for s in record['spikes_per_neuron']]}  "
                 f"({record['seconds']:.1f} s)")
    if record is None:
        record = history[-1] if history else {}
        log.info("%s already complete (%d epochs)", run, cfg.train.epochs)
    return record
