"""Training through a chip view (training.chip_layer): the network's forward and backprop on chip
layers (effective weights, leak, per-neuron thresholds, delay), against their definitions and
central finite differences, and an identity view leaving training bit for bit unchanged.

The view here is a small analytic one written for the test (scaled weights, a leak that grows
with sum_j |w_ij| as a passive column's does, offset thresholds, a delay), so the chain rule of
`ChipView.pull_back` is known exactly; hwmodel's real view has its own tests.
"""
import dataclasses
import json

import numpy as np
import pytest

from training import network
from training.chip_layer import ChipLayer
from training.config import LossConfig, ModelConfig, RegConfig, RunConfig, TrainConfig
from training.optim import Adam
from training.trainer import train_epoch

from finite_diff import weight_differences

SIZES = (16, 9, 7, 5)
MODEL = ModelConfig(layers=(784, 1), v_th=1.0, t_end=4.0)     # only v_th and t_end are read
LOSS = LossConfig(tau_soft=0.5, gamma_t=1e-2, t_ref=2.0)


class AnalyticView:
    """w_eff = scale w, lam_i = lam0 + lam_w sum_j |w_ij|, thresholds v_th (1 + offsets), a delay."""

    static_power_w = 0.0

    def __init__(self, scale=1.0, lam0=0.0, lam_w=0.0, offsets=None, delay=0.0, leaky=True):
        self.scale, self.lam0, self.lam_w, self.offsets, self.delay, self.leaky = \
            scale, lam0, lam_w, offsets, delay, leaky

    def nominal(self, weights):
        out = []
        for l, w in enumerate(weights):
            lam = self.lam0 + self.lam_w * np.abs(w).sum(axis=0) if self.leaky else None
            v_th = None if self.offsets is None else MODEL.v_th * (1.0 + self.offsets[l])
            out.append(ChipLayer(self.scale * w, lam, v_th, self.delay))
        return out

    def draw(self, weights, step):
        return self.nominal(weights)

    def refresh(self, weights):
        pass

    def pull_back(self, weights, layers, grad_w, grad_lam):
        return [self.scale * g + (0.0 if gl is None else self.lam_w * np.sign(w) * gl[None, :])
                for w, g, gl in zip(weights, grad_w, grad_lam)]


def _network(seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(2.0 / a, 1.2 / np.sqrt(a), (a, n)) for a, n in zip(SIZES[:-1], SIZES[1:])]
    weights[-1] = rng.normal(8.0 / SIZES[-2], 1.0 / np.sqrt(SIZES[-2]), weights[-1].shape)   # every output fires: the
    # gradient of a silent output is the one non-exact one (network.py), which differences cannot check
    t_in = rng.uniform(0.0, 1.0, (6, SIZES[0]))
    t_in[:, :3] = 1.0                      # a tie group at t_in, as MNIST's black pixels
    labels = rng.integers(0, SIZES[-1], 6)
    return weights, t_in, labels


def _loss(weights, view, t_in, labels, backend, reg=("none", 0.0, None), penalty=0.0):
    """The batch's total loss (mean output loss + regulariser + firing penalty) and its gradient."""
    chip = view.nominal(weights)
    states = network.forward(weights, t_in, MODEL, backend, chip)
    loss, delta = network.output_loss(states[-1].t_out, labels, MODEL, LOSS)
    b = len(labels)
    pen = network.fire_penalty(weights, states, MODEL, penalty / b, "silent", backend) if penalty else None
    kind, strength, v_hat = reg
    back = network.backprop(weights, states, delta / b, MODEL, backend, kind,
                            [strength / b] * (len(weights) - 1), v_hat, pen)
    total = loss.mean() + back.reg.sum() + (0.0 if pen is None else pen.values.sum())   # reg, pen: already / b
    return total, view.pull_back(weights, chip, back.gw, back.glam), states


@pytest.mark.parametrize("backend, reg", [
    ("numba", ("none", 0.0, None)), ("numba", ("m-ssr", 0.05, None)), ("numba", ("f-ssr", 0.05, None)),
    ("numba", ("membrane", 0.05, 0.5)), ("numpy", ("none", 0.0, None))])   # the twins' regularisers: test_leaky_reg
def test_chip_gradient_against_finite_differences(backend, reg):
    """Every weight's derivative of the whole loss (output loss, regulariser, firing penalty) through
    a leaky chip layer with weight-dependent leak, offset thresholds and a delay. Kinks (a neuron
    starting or stopping to fire, an input crossing the window end) lie farther than h from these
    random points, so central differences agree to 2e-6 (loss values of order 1)."""
    weights, t_in, labels = _network(1)
    rng = np.random.default_rng(2)
    offsets = [rng.normal(0.0, 0.05, n) for n in SIZES[1:]]
    view = AnalyticView(scale=1.3, lam0=0.2, lam_w=0.15, offsets=offsets, delay=0.05)
    _, grads, states = _loss(weights, view, t_in, labels, backend, reg, penalty=0.3)
    assert any(np.isfinite(s.t_out).any() and (~np.isfinite(s.t_out)).any() for s in states[:-1])
    f = lambda ws: _loss(ws, view, t_in, labels, backend, reg, penalty=0.3)[0]
    for layer in range(len(weights)):
        flat = np.arange(weights[layer].size)[:: max(1, weights[layer].size // 25)]
        fd = weight_differences(f, weights, layer, flat, 1e-6)
        np.testing.assert_allclose(grads[layer].ravel()[flat], fd, atol=2e-6, rtol=1e-5)


def test_delay_shifts_spikes_and_shortens_the_window():
    """A layer with delay d: crossings are those of the same neuron in a window ending at t_end - d,
    and the next layer sees them d later."""
    weights, t_in, _ = _network(3)
    d = 0.3
    got = network.forward(weights, t_in, MODEL, "numba", AnalyticView(delay=d, leaky=False).nominal(weights))
    t = t_in
    short = dataclasses.replace(MODEL, t_end=MODEL.t_end - d)
    for l, w in enumerate(weights):
        want = network.forward([w], t, short, "numba")[0].t_out + d
        np.testing.assert_array_equal(got[l].t_out, want)
        np.testing.assert_array_equal(got[l].t_in, t)
        t = want


def test_leaky_chip_layer_with_zero_leak_is_the_ideal_neuron():
    """lam = 0 and the model's thresholds given as arrays: the leaky kernels run and give the ideal
    model's firing times and gradients."""
    weights, t_in, labels = _network(4)
    ideal_loss, ideal_grads, ideal_states = _loss(weights, AnalyticView(leaky=False), t_in, labels, "numba")
    zero = AnalyticView(lam0=0.0, lam_w=0.0, offsets=[np.zeros(n) for n in SIZES[1:]])
    loss, grads, states = _loss(weights, zero, t_in, labels, "numba")
    assert all(s.leaky for s in states)
    for a, b in zip(states, ideal_states):
        np.testing.assert_allclose(a.t_out, b.t_out, rtol=1e-12)
    for a, b in zip(grads, ideal_grads):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert loss == pytest.approx(ideal_loss, rel=1e-12)


def test_identity_view_trains_bit_for_bit_as_no_view():
    """A view whose layers are the weights themselves (no leak, no thresholds, no delay): one epoch
    with it gives exactly the weights of one epoch without it."""
    rng = np.random.default_rng(5)
    cfg = RunConfig(model=ModelConfig(layers=(784, 12, 10)), loss=dataclasses.replace(LOSS, fire_penalty=1e-2),
                    train=TrainConfig(epochs=1, batch_size=16), reg=RegConfig(kind="m-ssr", strength=1e-3))
    weights = network.init_weights(cfg.model.layers, 2.0, 1.4, 0)
    t = rng.uniform(0.0, 1.0, (64, 784))
    labels = rng.integers(0, 10, 64)
    runs = []
    for view in (None, AnalyticView(leaky=False)):
        ws = [w.copy() for w in weights]
        opt = Adam([w.shape for w in ws], cfg.train.lr)
        train_epoch(ws, opt, cfg, t, labels, 0, progress=False, view=view)
        runs.append(ws)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


BASE = ["--set", "model.layers=[784, 16, 10]", "--set", "data.train_limit=300", "--set", "data.test_limit=100",
        "--set", "train.batch_size=50", "--quiet"]
TINY = [*BASE, "--set", "train.epochs=1"]
NO_WIRES = ["--set", "hw.r_wire_row_ohm=0", "--set", "hw.r_wire_col_ohm=0"]


def test_train_for_a_chip_from_the_command_line(tmp_path, capsys):
    """`ttfs train --hw passive` trains on the passive chip: hw.yaml and model.yaml record it, eval
    runs on its nominal chip (and --ideal on ideal neurons), a resume must keep the chip, and a
    config's hw: section does the same as the flag."""
    import yaml
    from hwmodel.config import HardwareConfig
    from ttfs.cli import main

    run = tmp_path / "run"
    assert main(["train", "--config", "mnist-784-400-10", "--hw", "passive", "--out", str(run), *TINY,
                 *NO_WIRES, "--set", "hw.bits=3"]) == 0
    hw = HardwareConfig.from_dict(yaml.safe_load((run / "hw.yaml").read_text()))
    assert hw.neuron == "passive" and hw.bits == 3 and hw.r_wire_row_ohm == 0
    assert yaml.safe_load((run / "model.yaml").read_text())["hw"] == hw.to_dict()
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--limit", "100"]) == 0
    on_chip = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run), "--json", "--ideal", "--limit", "100"]) == 0
    ideal = json.loads(capsys.readouterr().out)
    assert on_chip["on_chip"] and not ideal["on_chip"]
    assert on_chip["spikes_per_neuron"] != ideal["spikes_per_neuron"]      # the leak changes the firing
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["test_accuracy"] == on_chip["accuracy"]                   # epochs are measured on the nominal chip
    # resuming: the saved chip by default, another chip refused, none refused for a chip run
    assert main(["train", "--config", "mnist-784-400-10", "--resume", "--out", str(run), *BASE,
                 "--set", "train.epochs=2"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert main(["train", "--config", "mnist-784-400-10", "--resume", "--hw", "default", "--out", str(run),
                 *BASE, "--set", "train.epochs=3"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    # the same chip from a config's hw: section (a mapping of hardware keys)
    cfg = yaml.safe_load(open("configs/mnist-784-400-10.yaml"))
    cfg["hw"] = {"neuron": "passive", "v_th_v": 0.01, "scale_by": "capacitance", "bogus_key": 1}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r2"), *TINY]) == 2
    assert "hw.bogus_key" in capsys.readouterr().err
    del cfg["hw"]["bogus_key"]
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r2"), *TINY]) == 0
    assert yaml.safe_load((tmp_path / "r2" / "hw.yaml").read_text())["neuron"] == "passive"
    # hw overrides without a chip are an error naming the flag
    assert main(["train", "--config", "mnist-784-400-10", "--out", str(tmp_path / "r3"), *TINY,
                 "--set", "hw.bits=3"]) == 2
    assert "--set hw.bits" in capsys.readouterr().err


def test_the_chip_of_a_run_is_the_one_its_epochs_committed(tmp_path, capsys):
    """A folder left with only hw.yaml (a chip run stopped in its first epoch) starts again; a
    resumed run trains for the chip its committed epochs record even if hw.yaml was removed (and
    writes it back); the checkpoint alone (model.npz, model.yaml) is evaluated on its chip; a
    comparator delay as long as the window is refused, naming the key."""
    import shutil
    import yaml
    from ttfs.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "hw.yaml").write_text("neuron: passive\nscale_by: capacitance\nv_th_v: 0.01\n")
    chip = ["--hw", "passive", *NO_WIRES]
    assert main(["train", "--config", "mnist-784-400-10", *chip, "--out", str(run), *TINY]) == 0
    committed = yaml.safe_load((run / "model.yaml").read_text())["hw"]
    assert yaml.safe_load((run / "hw.yaml").read_text()) == committed and committed["r_wire_row_ohm"] == 0
    (run / "hw.yaml").unlink()
    assert main(["train", "--config", "mnist-784-400-10", "--resume", "--out", str(run), *BASE,
                 "--set", "train.epochs=2"]) == 0
    assert yaml.safe_load((run / "hw.yaml").read_text()) == committed
    assert yaml.safe_load((run / "model.yaml").read_text())["hw"] == committed
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("model.npz", "model.yaml"):
        shutil.copy(run / name, copy / name)
    capsys.readouterr()
    assert main(["eval", str(copy), "--json", "--limit", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["on_chip"]
    assert main(["train", "--config", "mnist-784-400-10", *chip, "--set", "hw.comparator_delay_s=4e-7",
                 "--out", str(tmp_path / "late"), *TINY]) == 2
    assert "hw.comparator_delay_s" in capsys.readouterr().err


def test_a_sweep_trains_every_point_for_the_chip(tmp_path, capsys):
    """`ttfs sweep` with a config's hw: section trains each point as `ttfs train --hw` would (the
    same weights, bit for bit, and hw.yaml), and a rerun for another chip or for none is refused
    instead of skipping the complete runs; the chip maker pickles, for --jobs and --dask."""
    import pickle
    import yaml
    from hwmodel.config import HardwareConfig
    from ttfs.cli import main
    from ttfs.cmd_train import chip_factory

    cfg = yaml.safe_load(open("configs/mnist-784-400-10.yaml"))
    cfg["hw"] = "passive"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    sweep = tmp_path / "sweep"
    sets = [*TINY, *NO_WIRES]
    assert main(["sweep", "--config", str(path), "--reg", "m-ssr", "--strengths", "0,1e-3", "--out", str(sweep),
                 "--no-plots", *sets]) == 0
    alone = tmp_path / "alone"
    assert main(["train", "--config", "mnist-784-400-10", "--hw", "passive", "--out", str(alone), *sets,
                 "--set", "reg.kind=m-ssr", "--set", "reg.strength=1e-3"]) == 0
    point = sweep / "m-ssr_s0.001"
    assert (point / "hw.yaml").read_text() == (alone / "hw.yaml").read_text()
    assert yaml.safe_load((sweep / "none" / "hw.yaml").read_text())["neuron"] == "passive"
    with np.load(point / "model.npz") as a, np.load(alone / "model.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    capsys.readouterr()
    for other in (["--hw", "default"], []):
        base = str(path) if other else "mnist-784-400-10"
        assert main(["sweep", "--config", base, "--reg", "m-ssr", "--strengths", "0,1e-3", "--out", str(sweep),
                     "--no-plots", *sets[:-4], *other]) == 2
        err = capsys.readouterr().err
        assert "holds a run trained for" in err and ("another chip" in err if other else "no chip" in err)
    hw = HardwareConfig.from_dict(yaml.safe_load((point / "hw.yaml").read_text()))
    made = pickle.loads(pickle.dumps(chip_factory(hw)))(RunConfig().model)
    assert made.record() == hw.to_dict()


def test_epoch_figures_are_on_the_chip_ttfs_eval_evaluates(tmp_path):
    """With exact wires (solved once per epoch) an epoch's test figures use the wires of the weights
    it saves: the nominal chip it evaluates is, to the bit, the one `ttfs eval` builds from the run."""
    from hwmodel.aware import ChipTraining, nominal_chip_of
    from infra.config import load_config
    from hwmodel.config import HardwareConfig
    from training.checkpoint import load_model
    from training.trainer import train

    cfg = load_config("mnist-784-400-10", RunConfig, [
        "model.layers=[784, 16, 10]", "data.train_limit=200", "data.test_limit=50", "train.batch_size=50",
        "train.epochs=2"])
    hw = load_config("default", HardwareConfig, ["tile_rows=64", "tile_cols=64"], section="hw")
    assert hw.wire_model == "exact" and hw.r_wire_row_ohm > 0

    class Recording(ChipTraining):
        def nominal(self, weights):
            self.last = super().nominal(weights)
            return self.last

    view = Recording(hw, cfg.model)
    train(cfg, tmp_path / "run", progress=False, view=view)
    run = load_model(tmp_path / "run")
    again = nominal_chip_of(tmp_path / "run", run.weights, run.model)
    for a, b in zip(view.last, again):
        np.testing.assert_array_equal(a.w, b.w)
        np.testing.assert_array_equal(a.lam, b.lam)


def test_a_run_saved_before_a_hardware_key_existed_trains_for_the_same_chip(tmp_path, capsys):
    """A chip run whose saved hardware lacks a key added since (here the kT/C key, removed from
    every saved copy) resumes, is taken by a sweep as trained for that chip, and hw-tradeoff calls
    it trained for this chip: the missing key counts as its default."""
    import yaml
    from training import checkpoint
    from training.sweep import point_config, SweepPoint, _check_same_config
    from hwmodel.aware import ChipTraining
    from hwmodel.config import HardwareConfig
    from hwmodel.tradeoff import trained_for
    from infra.config import read_yaml
    from ttfs.cli import main

    run = tmp_path / "run"
    chip = ["--hw", "passive", *NO_WIRES]
    assert main(["train", "--config", "mnist-784-400-10", *chip, "--out", str(run), *TINY]) == 0
    key = "ktc_noise_temperature_k"
    for name in ("hw.yaml", "model.yaml"):
        data = yaml.safe_load((run / name).read_text())
        (data if name == "hw.yaml" else data["hw"]).pop(key)
        (run / name).write_text(yaml.safe_dump(data))
    with np.load(run / "state.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays[checkpoint.STATE_META]))
    meta["hw"].pop(key)
    arrays[checkpoint.STATE_META] = np.array(json.dumps(meta))
    np.savez(run / "state.npz", **arrays)
    hw = HardwareConfig.from_dict(yaml.safe_load((run / "hw.yaml").read_text()))
    assert trained_for(run, hw) == "this chip"
    cfg = point_config(read_yaml("mnist-784-400-10"), SweepPoint("none", 0.0), [s for s in TINY if "=" in s])
    view = ChipTraining(hw, cfg.model)
    _check_same_config(run, cfg, view.record(), view.canonical)      # no error: the same chip
    assert main(["train", "--config", "mnist-784-400-10", "--resume", "--out", str(run), *BASE,
                 "--set", "train.epochs=2"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_resumed_chip_run_with_exact_wires_trains_as_an_uninterrupted_one(tmp_path):
    """The wires are solved once per epoch (at the first epoch of a process, then by each epoch's
    evaluation for the next): two epochs in one go and one epoch plus a resume give the same bits."""
    from hwmodel.aware import ChipTraining
    from hwmodel.config import HardwareConfig
    from infra.config import load_config
    from training.trainer import train

    sets = ["model.layers=[784, 16, 10]", "data.train_limit=200", "data.test_limit=50", "train.batch_size=50"]
    hw = load_config("default", HardwareConfig, ["tile_rows=64", "tile_cols=64"], section="hw")
    cfg = {e: load_config("mnist-784-400-10", RunConfig, sets + [f"train.epochs={e}"]) for e in (1, 2)}
    train(cfg[2], tmp_path / "whole", progress=False, view=ChipTraining(hw, cfg[2].model))
    train(cfg[1], tmp_path / "split", progress=False, view=ChipTraining(hw, cfg[1].model))
    train(cfg[2], tmp_path / "split", resume=True, progress=False, view=ChipTraining(hw, cfg[2].model))
    with np.load(tmp_path / "whole" / "model.npz") as a, np.load(tmp_path / "split" / "model.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
