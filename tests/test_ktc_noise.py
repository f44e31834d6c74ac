"""kT/C reset noise on the membranes (hw.ktc_noise_temperature_k) and the low-power preset.

Each inference starts each column at a sampled v0 ~ N(0, k_B T / c_eff): the kernels (numba and numpy
twin) take it as the initial potential, the draws are their own per-inference stream, the model
with the key off is unchanged, and the firing times match a time-stepped solution of the same ODE.
"""
import json

import numpy as np
import pytest
import yaml
from scipy.integrate import solve_ivp

from hwmodel import behavioural, kernels, kernels_ref
from hwmodel.chip import draw_chip, ktc_seed
from hwmodel.config import HardwareConfig
from hwmodel.mapping import map_model
from hwmodel.neurons import layer_circuit
from infra.config import load_config
from infra.errors import ConfigError
from training import kernels as train_kernels
from training.config import ModelConfig

K_B = 1.380649e-23      # J/K, exact in the 2019 SI
T_END = 4e-6


def _case(seed, b=24, k=40, n=13):
    """Ties, a final tie group, inputs that never arrive or arrive late, mixed-sign drives (as
    tests/test_hw_kernels.py), and initial potentials of a few % of theta, one above it."""
    rng = np.random.default_rng(seed)
    t = rng.choice(np.linspace(0.0, 1e-6, 9), size=(b, k))
    t[:, :15] = 1e-6
    t[0, :] = 1e-6
    t[1, :] = np.inf                                               # no input at all: only v0 can fire it
    t[2, 5] = 5e-6
    t[3] += 2e-7                                                   # the first input late: v0 decays first
    a = rng.normal(np.linspace(-0.3, 0.4, n), 1.0, (k, n)) * 1e-7
    s = np.abs(rng.normal(0.0, 1.0, (k, n))) * 5e-8
    c = np.full(n, 1e-11)
    theta = rng.uniform(0.05, 0.3, n)
    v0 = rng.normal(0.0, 0.05, (b, n)) * theta
    v0[1, 0] = 1.5 * theta[0]                                      # above threshold at t = 0
    return t, a, s, c, theta, v0


@pytest.mark.parametrize("leak", [0.0, 3e-8, 3e-6])      # none, series branch of expm1, expm1 branch
@pytest.mark.parametrize("noisy", [False, True])
def test_numba_kernel_equals_numpy_twin_from_initial_potentials(leak, noisy):
    t, a, s, c, theta, v0 = _case(1)
    s = s if noisy else np.zeros_like(s)
    g = np.full(a.shape[1], leak)
    if leak:
        g[2] = 0.0
    got = kernels.column_forward(t, a, s, g, c, theta, T_END, np.uint64(11), 5, v0)
    want = kernels_ref.column_forward(t, a, s, g, c, theta, T_END, np.uint64(11), 5, v0)
    assert 0.2 < np.isfinite(got).mean() < 1.0
    assert got[1, 0] == 0.0 and np.all(np.isinf(got[1, 1:]))       # v0 above theta fires at 0, nothing else
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    f = np.isfinite(got)
    np.testing.assert_allclose(got[f], want[f], rtol=1e-12, atol=1e-20)
    plain = kernels.column_forward(t, a, s, g, c, theta, T_END, np.uint64(11), 5)
    both = np.isfinite(plain) & np.isfinite(got)
    assert np.any(np.abs(plain[both] - got[both]) > 1e-3 * T_END)
    np.testing.assert_array_equal(kernels.reset_normals(np.uint64(9), 7, 5, 6),
                                  kernels_ref.reset_normals(np.uint64(9), 7, 5, 6))


@pytest.mark.parametrize("column", [kernels.column_forward, kernels_ref.column_forward])
def test_zero_initial_potentials_are_the_model_without_them(column):
    """v0 = 0 everywhere gives bit for bit the kernel without v0 (which is the code before kT/C noise)."""
    t, a, s, c, theta, v0 = _case(2)
    for g in (np.zeros(a.shape[1]), np.full(a.shape[1], 3e-6)):
        without = column(t, a, s, g, c, theta, T_END, np.uint64(4), 0)
        np.testing.assert_array_equal(column(t, a, s, g, c, theta, T_END, np.uint64(4), 0, np.zeros_like(v0)), without)


def _small_design(hw: HardwareConfig):
    rng = np.random.default_rng(3)
    w = [rng.normal(2.5 / 60, 0.05, (60, 12)), rng.normal(0.3, 0.3, (12, 5))]
    return map_model(w, ModelConfig(layers=(60, 12, 5)), hw)


def test_key_off_leaves_the_circuits_and_firing_times_unchanged():
    """The key's default (null) adds nothing: no reset voltages, the ideal integrator still runs on the
    training sweep, and layer_times equals the kernels called without initial potentials."""
    rng = np.random.default_rng(4)
    t_in = rng.uniform(0, 1, (40, 60))
    t_in[t_in > 0.8] = np.inf
    for name in ("ideal", "default", "passive"):
        hw = load_config(name, HardwareConfig, section="hw").with_(r_wire_row_ohm=0.0, r_wire_col_ohm=0.0)
        assert hw.ktc_noise_temperature_k is None
        design = _small_design(hw)
        circs = behavioural.circuits(design)
        assert all(c.ktc_rms_v is None for c in circs)
        assert circs[0].ideal == (name == "ideal")
        got = behavioural.layer_times(design, t_in * design.time_scale_s)
        chip = design.stored_chip()
        t = t_in * design.time_scale_s
        for l, circ in enumerate(circs):
            if circ.ideal:          # the training sweep, as before kT/C noise (one threshold per layer here)
                assert np.all(circ.theta_v == circ.theta_v[0])
                w = circ.drive_a / circ.c_eff_f[None, :]
                want = train_kernels.forward(np.ascontiguousarray(t), np.ascontiguousarray(w), float(circ.theta_v[0]),
                                             design.t_end_s - hw.comparator_delay_s)[0]
            else:
                want = kernels.column_forward(np.ascontiguousarray(t), circ.drive_a, circ.noise_a, circ.g_leak_s,
                                              circ.c_eff_f, circ.theta_v, design.t_end_s - hw.comparator_delay_s,
                                              np.uint64(chip.noise_seed + 7919 * l), 0)
            t = want + hw.comparator_delay_s
            np.testing.assert_array_equal(got[l], t)


def _integrator_layer(hw, n=25, c_f=1e-12, v_th_v=0.1):
    """One input (driven at t = 0) into n ideal-integrator neurons: fires at c (theta - v0) / a."""
    g = np.full((1, n), 1e-6)
    return layer_circuit(g, np.zeros((1, n)), np.zeros(n), c_f, v_th_v, hw)


def test_reset_voltages_are_normal_with_the_ktc_variance_on_their_own_stream():
    """The crossing time c (theta - v0) / a of an integrator driven from t = 0 reveals v0: mean 0 and
    std sqrt(k_B T / C) within 5 standard errors, normal tails, keyed by the global image index."""
    hw = HardwareConfig(ktc_noise_temperature_k=300.0)
    circ = _integrator_layer(hw)
    rms = np.sqrt(K_B * 300.0 / 1e-12)
    assert not circ.ideal and np.allclose(circ.ktc_rms_v, rms, rtol=1e-12) and abs(rms - 64.36e-6) < 0.01e-6
    n_img = 4000
    t = np.zeros((n_img, 1))
    seed = ktc_seed(hw, 0)
    out = behavioural.fire(circ, t, 1.0, 0.0, 0, 0, reset_seed=seed)
    a = circ.drive_a[0, 0]
    v0 = circ.theta_v[0] - a * out / circ.c_eff_f[0]
    m = v0.size
    assert abs(v0.mean()) < 5 * rms / np.sqrt(m)
    assert abs(v0.std() / rms - 1.0) < 5 / np.sqrt(2 * m)
    assert abs((np.abs(v0) > 2 * rms).mean() - 0.0455) < 0.004
    # another batch split gives the same draws, another chip's seed others
    np.testing.assert_array_equal(behavioural.fire(circ, t[1000:1500], 1.0, 0.0, 0, 1000, reset_seed=seed),
                                  out[1000:1500])
    other = circ.theta_v[0] - a * behavioural.fire(circ, t[:400], 1.0, 0.0, 0, 0, reset_seed=ktc_seed(hw, 1)) \
        / circ.c_eff_f[0]
    assert abs(np.corrcoef(other.ravel(), v0[:400].ravel())[0, 1]) < 0.05
    # the chips' own draws (cells, offsets, the read-noise seed) do not change when the key is turned on
    rng = np.random.default_rng(0)
    g = [rng.uniform(1e-6, 1e-4, (20, 7))]
    base = HardwareConfig(prog_sigma=0.05, stuck_on_fraction=0.01, comparator_offset_sigma_v=0.002, read_noise_rel=0.01)
    for trial in (0, 3):
        off, on = draw_chip(g, g, base, trial), draw_chip(g, g, base.with_(ktc_noise_temperature_k=300.0), trial)
        for x, y in zip((off.g_pos, off.g_neg, off.offset_v), (on.g_pos, on.g_neg, on.offset_v)):
            np.testing.assert_array_equal(x[0], y[0])
        assert off.noise_seed == on.noise_seed != ktc_seed(base, trial)


def test_an_ideal_integrator_starting_at_v0_fires_as_at_threshold_minus_v0():
    """For an integrator the reset voltage is a threshold shift: the same times as the noiseless
    column with theta - v0, image by image."""
    t, a, _, c, theta, v0 = _case(5)
    z = np.zeros_like(a)
    g = np.zeros(a.shape[1])
    v0 = np.minimum(v0, 0.5 * theta)
    got = kernels.column_forward(t, a, z, g, c, theta, T_END, np.uint64(0), 0, v0)
    for b in range(len(t)):
        want = kernels.column_forward(t[b:b + 1], a, z, g, c, theta - v0[b], T_END, np.uint64(0), 0)[0]
        np.testing.assert_allclose(got[b], want, rtol=1e-12)


def _ode_times(t_in, a, g, c, theta, v0, t_end):
    """First upward crossing of theta of c dy/dt = sum_j a_j [t >= t_j] - g y, y(0) = v0, by adaptive
    time stepping (solve_ivp, piecewise between input events); inf if none before t_end."""
    if v0 > theta:
        return 0.0
    events = np.unique(np.concatenate([[0.0], t_in[t_in < t_end], [t_end]]))
    y = v0
    for lo, hi in zip(events[:-1], events[1:]):
        cur = a[t_in <= lo].sum()
        crossing = lambda t, yy: yy[0] - theta     # noqa: E731
        crossing.terminal, crossing.direction = True, 1.0
        sol = solve_ivp(lambda t, yy: [(cur - g * yy[0]) / c], (lo, hi), [y], method="DOP853", rtol=1e-12,
                        atol=1e-15, events=crossing)
        if sol.t_events[0].size:
            return float(sol.t_events[0][0])
        y = sol.y[0, -1]
    return np.inf


def test_firing_times_match_time_stepping_of_the_same_ode_from_the_drawn_voltages():
    """A passive layer on the low-power preset's scales (tens of fF, nS cells, 5 mV threshold): the
    kernel's times from the drawn reset voltages against solve_ivp from the same voltages, to 1e-6
    of the window; and the noise moves times by far more than that."""
    hw = load_config("low-power", HardwareConfig, section="hw").with_(r_wire_row_ohm=0.0, r_wire_col_ohm=0.0,
                                                                     read_noise_rel=0.0, comparator_delay_s=0.0)
    rng = np.random.default_rng(6)
    k, n, b = 12, 6, 8
    gp = rng.uniform(hw.g_min_s, hw.g_max_s, (k, n))
    gn = rng.uniform(hw.g_min_s, hw.g_max_s, (k, n))
    gp[:, :3] += 0.5 * hw.g_max_s                           # mostly excitatory columns fire
    circ = layer_circuit(gp, gn, np.zeros(n), 4e-14, hw.v_th_v, hw)
    assert circ.modes is None and not circ.ideal and 0.1e-3 < circ.ktc_rms_v[0] < 1e-3
    t_end = 4 * hw.time_scale_s
    t_in = rng.uniform(0.0, hw.time_scale_s, (b, k))
    t_in[:, :4] = hw.time_scale_s                           # a tie group
    t_in[0, 7] = np.inf
    seed = ktc_seed(hw, 0)
    v0 = circ.ktc_rms_v * kernels.reset_normals(np.uint64(seed), 0, b, n)
    got = behavioural.fire(circ, t_in, t_end, 0.0, 0, 0, reset_seed=seed)
    quiet = behavioural.fire(layer_circuit(gp, gn, np.zeros(n), 4e-14, hw.v_th_v, hw.with_(ktc_noise_temperature_k=None)),
                             t_in, t_end, 0.0, 0, 0)
    want = np.array([[_ode_times(t_in[i], circ.drive_a[:, j], circ.g_leak_s[j], circ.c_eff_f[j], circ.theta_v[j],
                                 v0[i, j], t_end) for j in range(n)] for i in range(b)])
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    f = np.isfinite(got)
    assert 0.3 < f.mean() < 1.0
    np.testing.assert_allclose(got[f], want[f], rtol=0, atol=1e-6 * t_end)
    both = f & np.isfinite(quiet)
    assert np.max(np.abs(got[both] - quiet[both])) > 1e-3 * t_end


@pytest.mark.parametrize("value", [0.0, -1.0, 1e4])
def test_the_temperature_is_range_checked_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"hw\.ktc_noise_temperature_k: must be in \(0, 600\] kelvin or null"):
        HardwareConfig(ktc_noise_temperature_k=value)


def test_ktc_noise_on_coupled_passive_columns_is_refused_naming_the_key():
    passive = load_config("passive", HardwareConfig, section="hw")
    with pytest.raises(ConfigError, match=r"hw\.ktc_noise_temperature_k: .*not modelled for passive columns coupled "
                                          r"by exact wires.*first-order"):
        passive.with_(ktc_noise_temperature_k=300.0)
    assert passive.with_(ktc_noise_temperature_k=300.0, wire_model="first-order").ktc_noise_temperature_k == 300.0
    assert passive.with_(ktc_noise_temperature_k=300.0, r_wire_row_ohm=0.0, r_wire_col_ohm=0.0).neuron == "passive"


def test_the_low_power_preset_has_ff_membranes_where_ktc_noise_matters():
    """configs/hw/low-power.yaml on a network with the trained MNIST 784-400-10's full scales (as
    tests/test_presets.py does for passive.yaml): tens of fF, kT/C noise a few % of the threshold."""
    hw = load_config("low-power", HardwareConfig, section="hw")
    assert hw.neuron == "passive" and hw.opamp_gain is None and hw.ktc_noise_temperature_k == 300.0
    assert hw.g_max_s <= 1e-7 and hw.v_read_v <= 0.1 and hw.time_scale_s < 1e-7
    rng = np.random.default_rng(0)
    w = [rng.uniform(-1, 1, (784, 40)), rng.uniform(-1, 1, (40, 10))]
    w = [x * fs / np.percentile(np.abs(x), 99) for x, fs in zip(w, (0.539, 0.387))]
    design = map_model(w, ModelConfig(layers=(784, 40, 10)), hw)
    assert np.allclose(design.c_mem_f, (36.7e-15, 51.1e-15), rtol=0.01)
    rms = np.sqrt(K_B * 300.0 / np.array(design.c_mem_f))
    assert np.all((0.02 < rms / hw.v_th_v) & (rms / hw.v_th_v < 0.1))
    assert all(c.ktc_rms_v is not None and np.allclose(c.ktc_rms_v, r) for c, r in zip(behavioural.circuits(design), rms))


def test_train_map_and_hw_eval_on_the_low_power_preset(tmp_path, capsys):
    """`ttfs train --hw low-power` on a few hundred images, `ttfs map --hw low-power`, `ttfs hw-eval`:
    the design records the key, and hw-eval's firing times move with the kT/C noise."""
    from ttfs.cli import main

    run, design = tmp_path / "run", tmp_path / "design"
    assert main(["train", "--config", "mnist-784-400-10", "--hw", "low-power", "--out", str(run), "--quiet",
                 "--set", "model.layers=[784, 16, 10]", "--set", "data.train_limit=300", "--set", "data.test_limit=100",
                 "--set", "train.batch_size=50", "--set", "train.epochs=1"]) == 0
    assert yaml.safe_load((run / "hw.yaml").read_text())["ktc_noise_temperature_k"] == 300.0
    assert main(["map", str(run), "--hw", "low-power", "--out", str(design)]) == 0
    assert yaml.safe_load((design / "design.yaml").read_text())["hw"]["ktc_noise_temperature_k"] == 300.0
    capsys.readouterr()
    results = []
    for sets in ([], ["--set", "hw.ktc_noise_temperature_k=null"]):
        assert main(["hw-eval", str(design), "--json", "--limit", "100", "--trials", "1", *sets]) == 0
        results.append(json.loads(capsys.readouterr().out))
    noisy, quiet = results
    assert noisy["n"] == quiet["n"] == 100 and 0.0 <= noisy["accuracy"] <= 1.0
    assert noisy["t_error_mean"] != quiet["t_error_mean"]
