"""Energy-aware training (reg.energy_strength): the chip's conduction and static energy as training
computes it (training.energy_term on hwmodel.aware's ConductionForm) against energy.model and a
brute-force time integral, its gradient through the whole network against finite differences,
strength 0 bit for bit unchanged, the static power a run records and resumes with (a run saved
before it was counted: conduction only), and a tiny CLI run that spends less energy than the same
run without it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from energy.config import EnergyConfig
from energy.model import COMPONENTS, EnergyCircuit, energy_per_image
from hwmodel.aware import ChipTraining
from hwmodel.behavioural import layer_times
from hwmodel.config import HardwareConfig
from hwmodel.mapping import map_model
from infra.config import PRESETS_DIR, load_config
from infra.errors import CheckpointError, ConfigError
from tests.finite_diff import weight_differences
from training import energy_term, kernels, kernels_ref, network
from training.config import ModelConfig, RegConfig

MODEL = ModelConfig(layers=(12, 7, 4))
IDEAL = load_config(PRESETS_DIR / "hw" / "ideal.yaml", HardwareConfig, section="hw")
# smooth for finite differences: no quantisation or stuck cells, a fixed full scale; drawn variation
# and a comparator delay (fixed draws within a step)
SMOOTH = IDEAL.with_(full_scale_weight=1.5, clip_weights=True, prog_sigma=0.1, comparator_delay_s=5e-8)
P_STATIC_W = EnergyConfig().static_power_w("integrator")    # the built-in defaults' comparator + op-amp bias


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.2, 0.35, (12, 7)), rng.normal(0.35, 0.35, (7, 4))]


def _inputs(seed=1, b=6):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, MODEL.t_in, (b, 12))
    t[:, :2] = MODEL.t_in          # a tie group at t_in (black pixels)
    t[0, 3] = np.inf               # an input that never spikes
    return t


def _energy(view, weights, t_in, step=None, backend="numba", coef=1.0):
    layers = view.nominal(weights) if step is None else view.draw(weights, step)
    states = network.forward(weights, t_in, MODEL, backend, layers)
    term = energy_term.conduction_energy(view.conduction(layers), t_in, [s.t_out for s in states], MODEL.t_end,
                                         coef, backend)
    return term, layers, states


def _brute_force_nj(form, t_in, times, t_end, dt=2e-4):
    """The energy as a time integral of the conducting cells' power on a fine grid (midpoints)."""
    drivers = [t_in] + list(times)
    grid = np.arange(0.0, t_end, dt) + dt / 2
    out = np.zeros(len(t_in))
    for b in range(len(t_in)):
        t_stop = t_end
        if form.stops_at_decision and np.isfinite(times[-1][b]).any():
            t_stop = min(t_end, times[-1][b].min() + form.guard)
        for l, rates in enumerate(form.rates):
            start = drivers[l][b][:, None]                       # (K, 1)
            stop = np.minimum(drivers[l + 1][b], t_stop)[None, :] if form.column_stops else np.full((1, 1), t_stop)
            for t in grid:
                on = (start <= t) & (t < stop)
                out[b] += (rates * on).sum() * dt
    return out


@pytest.mark.parametrize("gating", ["none", "decision", "column"])
@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
@pytest.mark.parametrize("wires", [False, True], ids=["no-wires", "first-order-wires"])
def test_the_term_is_energy_models_conduction(scheme, wires, gating):
    """Per image and crossbar the term (nominal chip) equals energy.model's exact conduction of the
    same design (gated there by the behavioural model's gate_times), on the behavioural model's
    firing times and on training's own ungated ones; its static part per image equals energy.model's
    `static` summed over the layers (the neurons' bias until the image's t_stop)."""
    hw = IDEAL.with_(scheme=scheme, comparator_delay_s=5e-8, full_scale_weight=1.5, clip_weights=True, bits=6,
                     gating=gating, decision_guard_s=2e-7)
    if wires:
        hw = hw.with_(r_wire_row_ohm=50.0, r_wire_col_ohm=30.0, wire_model="first-order")
    w = _weights(2)
    design = map_model(w, MODEL, hw)
    tau = hw.time_scale_s
    t_in = _inputs(3, b=8)
    times_s = layer_times(design, t_in * tau, design.stored_chip())
    result = energy_per_image(EnergyCircuit.from_design(design), EnergyConfig(), t_in * tau, times_s)
    view = ChipTraining(hw, MODEL, static_power_w=P_STATIC_W)
    term = energy_term.conduction_energy(view.conduction(view.nominal(w)), t_in, [t / tau for t in times_s],
                                         MODEL.t_end)
    want = result.energy_j[:, :MODEL.n_hidden_layers + 1, COMPONENTS.index("conduction")]
    static = result.energy_j[:, :, COMPONENTS.index("static")].sum(axis=1)
    assert static.min() > 0
    np.testing.assert_allclose(term.static_nj * 1e-9, static, rtol=1e-10)
    np.testing.assert_allclose(term.values_nj * 1e-9, want.sum(axis=1) + static, rtol=1e-10)
    assert want.min() > 0
    if gating != "none":
        assert np.all(result.t_stop_s < design.t_end_s)
    np.testing.assert_allclose(term.per_layer_nj * 1e-9, want, rtol=1e-10)
    # and the training forward pass's own times give the same energies
    own, _, _ = _energy(view, w, t_in)
    np.testing.assert_allclose(own.values_nj, term.values_nj, rtol=1e-9)


@pytest.mark.parametrize("gating", ["none", "decision", "column"])
def test_the_term_is_the_time_integral_of_the_conducting_cells(gating):
    """Against a brute-force integral of the cells' power over time (grid 2e-4 model time), for
    each gating (the spec's t_stop and the column's own stop)."""
    hw = SMOOTH.with_(gating=gating, decision_guard_s=2e-7)
    view = ChipTraining(hw, MODEL)
    w = _weights(4)
    t_in = _inputs(5, b=4)
    term, layers, states = _energy(view, w, t_in)
    form = view.conduction(layers)
    assert form.stops_at_decision == (gating != "none") and form.column_stops == (gating == "column")
    assert form.guard == pytest.approx(0.2)
    assert np.isfinite(states[-1].t_out).any(axis=1).all()
    brute = _brute_force_nj(form, t_in, [s.t_out for s in states], MODEL.t_end)
    np.testing.assert_allclose(term.values_nj, brute, rtol=2e-3)
    if gating != "none":
        plain, _, _ = _energy(ChipTraining(hw.with_(gating="none"), MODEL), w, t_in)
        assert np.all(term.values_nj < plain.values_nj)


@pytest.mark.parametrize("static", [False, True], ids=["conduction", "with-static"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
@pytest.mark.parametrize("gating", ["none", "decision", "column"])
def test_the_gradient_through_the_whole_network_matches_finite_differences(gating, scheme, backend, static):
    """d(batch energy)/d(every weight of every layer), through the firing times (the network's
    exact backward pass), t_stop (the first output spike) and the cells (pull_back), against
    central differences of the energy of the same drawn chip; with the static bias counted, which
    moves the gradient (through t_stop) only when the chip stops at the decision."""
    hw = SMOOTH.with_(scheme=scheme, gating=gating, decision_guard_s=3e-7)
    view = ChipTraining(hw, MODEL, static_power_w=P_STATIC_W if static else 0.0)
    w = _weights(6)
    t_in = _inputs(7)
    term, layers, states = _energy(view, w, t_in, step=3, backend=backend)
    assert np.isfinite(states[0].t_out).mean() > 0.3
    back = network.backprop(w, states, np.zeros_like(states[-1].t_out), MODEL, backend, extra_gt=term.gt)
    got = view.pull_back(w, layers, back.gw, back.glam, term.g_rates)

    def f(ws):
        return float(_energy(view, ws, t_in, step=3, backend=backend)[0].values_nj.sum())

    through_times = False
    for l in range(2):
        fd = weight_differences(f, w, l, np.arange(w[l].size), 1e-6)
        np.testing.assert_allclose(got[l].ravel(), fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())
        # the firing-time part matters: the cells' part alone is not the gradient
        alone = view.pull_back(w, layers, [np.zeros_like(x) for x in w], [None, None], term.g_rates)[l]
        through_times |= not np.allclose(alone.ravel(), fd, rtol=1e-3, atol=1e-3 * np.abs(fd).max())
    assert through_times
    if static:
        assert term.static_nj.min() > 0.2 * term.conduction_nj.max()        # not a negligible part
        plain, _, _ = _energy(ChipTraining(hw, MODEL), w, t_in, step=3, backend=backend)
        np.testing.assert_allclose(term.conduction_nj, plain.values_nj, rtol=1e-12)
        g_plain = network.backprop(w, states, np.zeros_like(states[-1].t_out), MODEL, backend, extra_gt=plain.gt)
        moved = any(not np.allclose(a, b) for a, b in zip(g_plain.gw, back.gw))
        assert moved == (gating != "none")


def test_column_kernel_numba_equals_its_numpy_twin():
    rng = np.random.default_rng(8)
    t_in = rng.uniform(0, 1, (9, 20))
    t_in[rng.random(t_in.shape) < 0.2] = np.inf
    a = rng.uniform(0.5, 3.0, (9, 11))
    rates = rng.uniform(0, 2, (20, 11))
    for x, y in zip(kernels.column_conduction(t_in, a, rates), kernels_ref.column_conduction(t_in, a, rates)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_energy_strength_is_checked_and_needs_an_integrator_chip():
    with pytest.raises(ConfigError, match="reg.energy_strength"):
        RegConfig(energy_strength=-1.0)
    with pytest.raises(ConfigError, match="reg.energy_strength"):
        RegConfig(energy_strength=float("nan"))
    passive = IDEAL.with_(neuron="passive", scale_by="capacitance", v_th_v=0.01)
    view = ChipTraining(passive, MODEL)
    assert view.conduction(view.nominal(_weights())) is None
    from training.trainer import conduction_form
    with pytest.raises(ConfigError, match="reg.energy_strength.*hw.neuron passive"):
        conduction_form(view, view.nominal(_weights()))
    with pytest.raises(ConfigError, match="reg.energy_strength.*--hw"):
        conduction_form(None, None)


def _train(tmp_path, name, settings, hw=True, monkeypatch=None, extra=()):
    from ttfs.cli import main

    run = tmp_path / name
    args = ["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(run), "--quiet",
            "--set", "model.layers=[784, 16, 10]", "--set", "train.epochs=2", "--set", "data.train_limit=1000",
            "--set", "data.test_limit=200", "--set", "train.batch_size=20", "--set", "seed=3"]
    if hw:
        args += ["--hw", "ideal"]
    for s in settings:
        args += ["--set", s]
    code = main(args + list(extra))
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()] if code == 0 else None
    return code, run, records


def test_strength_zero_trains_bit_for_bit_as_without_the_term(tmp_path, monkeypatch):
    """energy_strength 0: the same weights and metrics as a run whose chip offers no energy form
    at all (the path before the term existed), apart from the logged energy_nj."""
    _, run_a, rec_a = _train(tmp_path, "a", ["reg.energy_strength=0"])
    monkeypatch.setattr(ChipTraining, "conduction", lambda self, layers: None)
    _, run_b, rec_b = _train(tmp_path, "b", [])
    with np.load(run_a / "model.npz") as za, np.load(run_b / "model.npz") as zb:
        for k in za.files:
            np.testing.assert_array_equal(za[k], zb[k])
    for a, b in zip(rec_a, rec_b):
        assert a.pop("energy_nj") > 0 and "energy_nj" not in b and "train_energy_nj" not in a
        assert a.pop("static_nj") > 0 and "static_nj" not in b and "train_static_nj" not in a
        a.pop("seconds"), b.pop("seconds")
        assert a == b


def _energy_file(tmp_path, name, **powers):
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in powers.items()))
    return str(path)


AWARE = ["hw.gating=decision", "hw.decision_guard_s=2e-7", "reg.energy_strength=0.03"]


def test_a_run_records_its_static_power_and_resumes_only_with_it(tmp_path, capsys):
    """model.yaml holds the static power per neuron the term counted (--energy, default the built-in
    defaults); a resume without --energy takes it, one with another --energy is a one-line error."""
    from infra import atomic_io
    from training.trainer import STATIC_KEY

    code, run, rec = _train(tmp_path, "r", AWARE + ["train.epochs=1"])
    assert code == 0 and atomic_io.read_yaml(run / "model.yaml", CheckpointError)[STATIC_KEY] == P_STATIC_W
    assert rec[-1]["train_static_nj"] > 0 and rec[-1]["train_energy_nj"] > 0 and rec[-1]["static_nj"] > 0
    other = _energy_file(tmp_path, "other", p_opamp_static_w=2e-5)
    code, _, _ = _train(tmp_path, "r", AWARE + ["train.epochs=2"], extra=["--resume", "--energy", other])
    err = capsys.readouterr().err
    assert code == 2 and "--energy" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, rec = _train(tmp_path, "r", AWARE + ["train.epochs=2"], extra=["--resume"])
    assert code == 0 and len(rec) == 2 and rec[-1]["static_nj"] > 0
    # a larger static power is a larger static part, of the same firing times
    code, _, big = _train(tmp_path, "big", AWARE + ["train.epochs=1"], extra=["--energy", other])
    assert code == 0 and atomic_io.read_yaml(tmp_path / "big" / "model.yaml", CheckpointError)[STATIC_KEY] == pytest.approx(2.1e-5)
    assert big[0]["train_static_nj"] > rec[0]["train_static_nj"]


def test_a_run_saved_before_the_static_power_resumes_with_the_conduction_only_term(tmp_path):
    """A run whose model.yaml (and state.npz) has no static_power_w, as every run saved before the
    term counted it, resumes (without --energy) with the conduction alone: bit for bit the run
    trained throughout with zero static powers."""
    from infra import atomic_io
    from training import checkpoint
    from training.trainer import STATE, STATIC_KEY

    zero = ["--energy", _energy_file(tmp_path, "zero", p_comparator_static_w=0.0, p_opamp_static_w=0.0)]
    assert _train(tmp_path, "ref", AWARE, extra=zero)[0] == 0
    code, old, _ = _train(tmp_path, "old", AWARE + ["train.epochs=1"], extra=zero)
    assert code == 0
    with np.load(old / STATE) as z:             # as saved before: no static_power_w
        state = {k: z[k] for k in z.files}
    meta = json.loads(str(state[checkpoint.STATE_META]))
    assert meta.pop(STATIC_KEY) == 0.0
    state[checkpoint.STATE_META] = np.array(json.dumps(meta))
    np.savez(old / STATE, **state)
    yaml = atomic_io.read_yaml(old / "model.yaml", CheckpointError)
    del yaml[STATIC_KEY]
    atomic_io.write_yaml(old / "model.yaml", yaml)
    code, _, rec = _train(tmp_path, "old", AWARE, extra=["--resume"])      # not the built-in defaults' power
    assert code == 0 and len(rec) == 2 and "static_nj" not in rec[-1] and "train_static_nj" not in rec[-1]
    with np.load(old / "model.npz") as za, np.load(tmp_path / "ref" / "model.npz") as zb:
        for k in za.files:
            np.testing.assert_array_equal(za[k], zb[k])


def test_cli_energy_strength_lowers_the_chips_energy(tmp_path, capsys):
    """The same seed and chip, with and without the term: lower conduction energy per image."""
    _, _, base = _train(tmp_path, "base", ["hw.gating=decision", "hw.decision_guard_s=2e-7"])
    _, _, low = _train(tmp_path, "low", ["hw.gating=decision", "hw.decision_guard_s=2e-7",
                                         "reg.energy_strength=0.03"])
    assert "train_energy_nj" in low[-1] and "train_energy_nj" not in base[-1]
    # measured: 11.0 nJ -> 8.0 nJ per image (accuracy 54% -> 39% after 2 epochs of 1000 images)
    assert low[-1]["energy_nj"] < 0.85 * base[-1]["energy_nj"]
    assert low[-1]["test_accuracy"] > 0.25
    code, _, _ = _train(tmp_path, "ideal", ["reg.energy_strength=1e-3"], hw=False)
    assert code == 2
    err = capsys.readouterr().err
    assert "reg.energy_strength" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sweep_takes_energy_strength_like_other_reg_keys(tmp_path):
    """`ttfs sweep --hw ... --set reg.energy_strength=X`: every point trains with the term (its
    static part too); tradeoff.csv and tradeoff_mean.csv hold energy_strength (a point column) and
    energy_nj."""
    from training.sweep import CSV_NAME, MEAN_CSV_NAME, read_tradeoff
    from ttfs.cli import main

    out = tmp_path / "sweep"
    tiny = ["model.layers=[784, 12, 10]", "train.epochs=1", "data.train_limit=200", "data.test_limit=50",
            "train.batch_size=50", "reg.energy_strength=0.01"]
    assert main(["sweep", "--config", "mnist-784-400-10", "--reg", "m-ssr", "--strengths", "0,1e-3", "--hw", "ideal",
                 "--out", str(out), "--quiet"] + [x for s in tiny for x in ("--set", s)]) == 0
    rows = read_tradeoff(out / CSV_NAME)
    assert len(rows) == 2 and all(r["energy_strength"] == 0.01 and r["energy_nj"] > 0 for r in rows)
    for run in ("none", "m-ssr_s0.001"):
        last = json.loads((out / run / "metrics.jsonl").read_text().splitlines()[-1])
        assert last["train_energy_nj"] > 0 and last["energy_nj"] == pytest.approx(
            [r for r in rows if r["run"] == run][0]["energy_nj"])
        assert last["train_static_nj"] > 0 and last["static_nj"] > 0      # --energy's default: the built-in powers
    assert all(r["static_nj"] > 0 and r["static_power_w"] == pytest.approx(P_STATIC_W) for r in rows)
    header = (out / MEAN_CSV_NAME).read_text().splitlines()[0].split(",")
    assert "static_power_w" in header and "static_power_w_std" not in header    # a point column, not a metric
    assert "energy_strength" in header and "energy_nj" in header and "energy_nj_std" in header
    assert "static_nj" in header and "static_nj_std" in header


SWEEP_TINY = ["model.layers=[784, 12, 10]", "train.epochs=1", "data.train_limit=200", "data.test_limit=50",
              "train.batch_size=50"]


def _sweep(tmp_path, strengths, settings, extra=()):
    from ttfs.cli import main
    return main(["sweep", "--config", "mnist-784-400-10", "--reg", "m-ssr", "--strengths", strengths, "--hw", "ideal",
                 "--out", str(tmp_path / "sweep"), "--quiet", "--no-plots", *extra]
                + [x for s in SWEEP_TINY + settings for x in ("--set", s)])


def test_a_sweep_never_mixes_two_static_powers(tmp_path, capsys):
    """A sweep extended with another --energy than its kept points counted (an energy term on) is
    refused before anything trains; without a term every point keeps its own power."""
    from training.trainer import saved_static_power_w
    zero = ["--energy", _energy_file(tmp_path, "zero", p_comparator_static_w=0.0, p_opamp_static_w=0.0)]
    assert _sweep(tmp_path, "0", ["reg.energy_strength=0.01"], zero) == 0
    assert _sweep(tmp_path, "0,1e-3", ["reg.energy_strength=0.01"]) == 2       # the built-in powers now
    err = capsys.readouterr().err
    assert "--energy" in err and "counted a static power of 0.0 W" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sweep" / "m-ssr_s0.001" / "model.npz").exists()   # nothing trained
    assert _sweep(tmp_path, "0,1e-3", ["reg.energy_strength=0.01"], zero) == 0
    assert saved_static_power_w(tmp_path / "sweep" / "m-ssr_s0.001") == 0.0


def test_without_an_energy_term_a_resume_keeps_its_own_static_power(tmp_path):
    """reg.energy_strength 0: the static power changes no weight, so a resume under another --energy
    trains on, keeping (and logging) the run's own power."""
    from infra import atomic_io
    from training.trainer import STATIC_KEY
    gated = ["hw.gating=decision", "hw.decision_guard_s=2e-7"]
    code, run, first = _train(tmp_path, "r", gated + ["train.epochs=1"])
    assert code == 0
    other = _energy_file(tmp_path, "other", p_opamp_static_w=2e-5)
    code, _, rec = _train(tmp_path, "r", gated + ["train.epochs=2"], extra=["--resume", "--energy", other])
    assert code == 0 and len(rec) == 2
    assert atomic_io.read_yaml(run / "model.yaml", CheckpointError)[STATIC_KEY] == P_STATIC_W
    t_stop = [r["static_nj"] / P_STATIC_W for r in rec]       # the same power: the same scale of t_stop
    assert 0.75 < t_stop[1] / t_stop[0] < 1.33           # the other power would make it 1.9


def test_energy_without_a_chip_is_an_error(tmp_path, capsys):
    code, _, _ = _train(tmp_path, "ideal", [], hw=False, extra=["--energy", "default"])
    err = capsys.readouterr().err
    assert code == 2 and "--energy" in err and "--hw" in err and len(err.strip().splitlines()) == 1


def test_exact_wires_and_finite_gain_the_term_is_the_cells_at_virtual_ground():
    """With exact wires the term counts the programmed cells at virtual ground without the wires
    (energy.model of the same cells with no wire resistance, exactly); against energy.model's
    exact-wire conduction of the default chip's wires (1.2 ohm per pitch, 128 x 128 tiles) it is a
    little above (measured +2.2%: the wires' IR drop lowers the rows' currents). With a finite
    op-amp gain A the summing node sits at y/A: the term is its A -> inf limit (measured 2.5e-4
    relative at A = 1e4)."""
    model = ModelConfig(layers=(200, 50, 10))
    default = load_config(PRESETS_DIR / "hw" / "default.yaml", HardwareConfig, section="hw").with_(
        prog_sigma=0.0, stuck_on_fraction=0.0, stuck_off_fraction=0.0, comparator_offset_sigma_v=0.0,
        read_noise_rel=0.0, ktc_noise_temperature_k=None)
    rng = np.random.default_rng(0)
    w = [rng.normal(0.01, 0.1, (200, 50)), rng.normal(0.1, 0.3, (50, 10))]
    t_in = rng.uniform(0, 1, (10, 200))

    def both(hw, times_hw=None):
        design = map_model(w, model, hw)
        tau = hw.time_scale_s
        times = layer_times(design, t_in * tau, design.stored_chip()) if times_hw is None else times_hw
        res = energy_per_image(EnergyCircuit.from_design(design), EnergyConfig(), t_in * tau, times)
        view = ChipTraining(hw, model)
        term = energy_term.conduction_energy(view.conduction(view.nominal(w)), t_in, [t / tau for t in times],
                                             model.t_end)
        return term.values_nj * 1e-9, res.energy_j[:, :2, COMPONENTS.index("conduction")].sum(axis=1), times

    wired = default.with_(opamp_gain=None)
    assert wired.wire_model == "exact" and wired.r_wire_row_ohm > 0
    got, want, times = both(wired)
    assert np.all((got / want - 1 > 0.005) & (got / want - 1 < 0.04))
    got_free, want_free, _ = both(wired.with_(r_wire_row_ohm=0.0, r_wire_col_ohm=0.0), times)
    np.testing.assert_allclose(got, got_free, rtol=1e-12)
    np.testing.assert_allclose(got_free, want_free, rtol=1e-10)
    got, want, _ = both(default.with_(r_wire_row_ohm=0.0, r_wire_col_ohm=0.0, opamp_gain=1e4))
    assert np.all(np.abs(got / want - 1) < 1e-3)


def test_an_energy_aware_run_is_told_apart_in_tables_and_figures():
    """reg_of carries reg.energy_strength (hw-tradeoff's and explore's rows, energy-report's reg) and
    style_key gives such a run its own colour, whatever its sparse-firing kind; old runs read 0."""
    from hwmodel.sources import reg_of
    from training.plots import KIND_STYLE, style_key
    new = reg_of({"reg": {"kind": "none", "strength": 0.0, "v_hat": None, "energy_strength": 0.03}})
    old = reg_of({"reg": {"kind": "none", "strength": 0.0, "v_hat": None}})
    assert new["energy_strength"] == 0.03 and old["energy_strength"] == 0.0
    assert style_key(new["kind"], new["energy_strength"]) == "energy" != style_key(old["kind"], old["energy_strength"])
    assert style_key("m-ssr", 0.0) == "m-ssr" and KIND_STYLE["energy"] != KIND_STYLE["none"]
