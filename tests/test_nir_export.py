"""`ttfs export-nir`: the graph read back with nir.read, and simulated step by step against the exact model."""
import nir
import numpy as np
import pytest

from training import kernels
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.data import load_split
from training.encoding import encode_pixels
from training.nir_export import TAU_OVER_WINDOW
from ttfs.cli import main

MODEL = ModelConfig(layers=(784, 8, 10), v_th=1.25, t_in=1.0, t_end=3.5)   # not the defaults: each constant shows
DT = MODEL.t_in / (255 * 4)   # pixel times t_in * (255 - byte) / 255 and t_end fall on this grid


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("nir") / "run"
    rng = np.random.default_rng(3)
    w = [MODEL.v_th * rng.normal(1 / 784, 0.08, (784, 8)), MODEL.v_th * rng.normal(0.2, 0.3, (8, 10))]
    save_model(path, w, model_meta(MODEL, "mnist", {"test_accuracy": 0.5}))
    return path, w


def _export(run_dir, out, *flags):
    assert main(["export-nir", str(run_dir), "--out", str(out), *flags]) == 0
    return nir.read(out)


def _chain(graph):
    """Node names from input to output (the graph is a chain)."""
    nxt = dict(graph.edges)
    assert len(nxt) == len(graph.edges), "a node feeds two others"
    names = ["input"]
    while names[-1] != "output":
        names.append(nxt[names[-1]])
    return names


@pytest.mark.parametrize("scale_s", [None, 1e-6])
def test_exact_graph_reads_back_with_every_weight_and_constant(run, tmp_path, scale_s, capsys):
    run_dir, w = run
    flags = [] if scale_s is None else ["--time-scale-s", str(scale_s)]
    g = _export(run_dir, tmp_path / "exact.nir", *flags)
    assert f"wrote {tmp_path / 'exact.nir'}" in capsys.readouterr().out
    unit = 1.0 if scale_s is None else scale_s
    assert _chain(g) == ["input", "linear0", "current0", "neuron0", "linear1", "current1", "neuron1", "output"]
    assert len(g.nodes) == 8
    assert np.array_equal(g.nodes["input"].input_type["input"], [784])
    assert np.array_equal(g.nodes["output"].output_type["output"], [10])
    for l, wl in enumerate(w):
        lin, cur, neu = g.nodes[f"linear{l}"], g.nodes[f"current{l}"], g.nodes[f"neuron{l}"]
        assert isinstance(lin, nir.Linear) and isinstance(cur, nir.I) and isinstance(neu, nir.IF)
        assert lin.weight.dtype == np.float64 and np.array_equal(lin.weight, wl.T)
        n = wl.shape[1]
        assert np.array_equal(cur.r, np.ones(n))
        assert np.array_equal(neu.r, np.full(n, 1 / unit))
        assert np.array_equal(neu.v_threshold, np.full(n, MODEL.v_th))
        assert np.array_equal(neu.v_reset, np.zeros(n))
    m = g.metadata
    assert m["form"] == "exact" and m["format"] == "ttfs-nir/1"
    assert np.array_equal(m["layers"], [784, 8, 10])
    assert m["v_th"] == MODEL.v_th and m["t_in"] == MODEL.t_in * unit and m["t_end"] == MODEL.t_end * unit
    assert bool(m["fire_at_most_once"]) is True
    assert m["encoding"]["formula"] == "t = t_in * (1 - byte / 255)" and m["encoding"]["t_in"] == MODEL.t_in * unit
    assert m["dataset"] == "mnist" and m["source_run"] == str(run_dir) and m["test_accuracy"] == 0.5
    assert m["nir_version"] == nir.version and m["ttfs_version"]
    assert m["time_unit"] == ("model" if scale_s is None else "s")
    assert ("model_time_unit_s" in m) == (scale_s is not None) and "portable" not in m
    if scale_s is not None:
        assert m["model_time_unit_s"] == scale_s


@pytest.mark.parametrize("flags, factor, scale_s", [([], TAU_OVER_WINDOW, None),
                                                    (["--tau-over-window", "300", "--time-scale-s", "1e-3"], 300.0, 1e-3)])
def test_portable_graph_reads_back_with_every_weight_and_constant(run, tmp_path, flags, factor, scale_s):
    run_dir, w = run
    g = _export(run_dir, tmp_path / "portable.nir", "--portable", *flags)
    unit = 1.0 if scale_s is None else scale_s
    tau = factor * MODEL.t_end * unit
    assert _chain(g) == ["input", "linear0", "neuron0", "linear1", "neuron1", "output"] and len(g.nodes) == 6
    for l, wl in enumerate(w):
        lin, neu = g.nodes[f"linear{l}"], g.nodes[f"neuron{l}"]
        assert isinstance(lin, nir.Linear) and isinstance(neu, nir.CubaLIF)
        assert np.array_equal(lin.weight, wl.T)
        full = lambda x: np.full(wl.shape[1], x)   # noqa: E731
        assert np.array_equal(neu.tau_syn, full(tau)) and np.array_equal(neu.tau_mem, full(tau))
        assert np.array_equal(neu.w_in, full(tau))              # a spike raises the current by its weight
        assert np.array_equal(neu.r, full(tau / unit))          # r / tau_mem = 1 / (graph time per model unit)
        assert np.array_equal(neu.v_leak, full(0.0)) and np.array_equal(neu.v_reset, full(0.0))
        assert np.array_equal(neu.v_threshold, full(MODEL.v_th))
    m = g.metadata
    assert m["form"] == "portable" and m["t_end"] == MODEL.t_end * unit
    assert m["portable"]["tau"] == tau and m["portable"]["tau_over_window"] == factor


def simulate(graph, t_input, dt):
    """First-spike times of every layer of a NIR chain Linear -> (I -> IF | CubaLIF), time-stepped.

    Forward Euler with step dt in the graph's time unit, every neuron blocked after its first spike
    (the metadata's fire_at_most_once) and the window from graph.metadata["t_end"]. An input spike
    at t enters at the first step k with k dt >= t as a unit-area delta: the current jumps by
    g (W s) and then v and I are integrated over the step; a neuron fires at the first step where
    v > v_threshold, and its spike enters the next layer at that step. Without leak this is exact
    up to the step: the current is constant between steps.
    """
    names, layers = _chain(graph), []
    for pos, name in enumerate(names):
        node = graph.nodes[name]
        if not isinstance(node, nir.Linear):
            continue
        nxt = graph.nodes[names[pos + 1]]
        if isinstance(nxt, nir.CubaLIF):
            p = dict(g=nxt.w_in / nxt.tau_syn, a=1 / nxt.tau_syn, b=nxt.r / nxt.tau_mem, c=1 / nxt.tau_mem,
                     v_leak=nxt.v_leak, v_th=nxt.v_threshold)
        else:
            neuron = graph.nodes[names[pos + 2]]
            assert isinstance(nxt, nir.I) and isinstance(neuron, nir.IF)
            p = dict(g=nxt.r, a=0.0, b=neuron.r, c=0.0, v_leak=0.0, v_th=neuron.v_threshold)
        layers.append((node.weight, p))
    n_steps = int(round(graph.metadata["t_end"] / dt))
    k_in = np.ceil(t_input / dt - 1e-9)
    state = [dict(i=np.zeros((len(t_input), len(p["v_th"]))), v=np.zeros((len(t_input), len(p["v_th"]))),
                  t=np.full((len(t_input), len(p["v_th"])), np.inf)) for _, p in layers]
    for k in range(n_steps + 1):
        spikes = (k_in == k).astype(np.float64)
        for (w, p), s in zip(layers, state):
            new = (s["v"] > p["v_th"]) & np.isinf(s["t"])
            s["t"][new] = k * dt
            s["i"] += p["g"] * (spikes @ w.T)
            s["v"] += dt * (p["b"] * s["i"] + p["c"] * (p["v_leak"] - s["v"]))
            s["i"] -= dt * p["a"] * s["i"]
            spikes = new.astype(np.float64)
    return [s["t"] for s in state]


def _compare_layers(w, t_input, t_sim, shift=None):
    """Each layer's simulated first-spike times against the exact kernel fed the same input spikes
    (the simulation's own spikes of the layer below): later by shift (the leak's first-order
    delay; 0 without leak) plus less than one step, within a quarter of the shift for higher orders."""
    t_prev, shifts = t_input, []
    for l, (wl, ts) in enumerate(zip(w, t_sim)):
        t_ref, _, _, _, slope = kernels.forward(np.ascontiguousarray(t_prev), wl, MODEL.v_th, MODEL.t_end)
        fired = np.isfinite(t_ref)
        assert 0 < fired.mean() < 1, f"layer {l}: the images should make some neurons fire and others not"
        assert np.array_equal(np.isfinite(ts), fired), f"layer {l}: a neuron fires in one model only"
        d = np.zeros(fired.sum()) if shift is None else shift(wl, t_prev, t_ref, slope)[fired]
        late = ts[fired] - t_ref[fired] - d
        assert np.all(late >= -0.25 * np.abs(d) - 1e-9) and np.all(late <= DT + 0.25 * np.abs(d) + 1e-9), \
            (l, late.min(), late.max())
        shifts.append(d)
        t_prev = ts
    return shifts


def _images():
    return encode_pixels(load_split("mnist", "test", None, 5).images, MODEL.t_in)


def test_exact_graph_simulates_to_the_model_within_one_step(run, tmp_path):
    run_dir, w = run
    t_input = _images()
    assert np.allclose(t_input / DT, np.round(t_input / DT), atol=1e-6)
    scale_s = 1e-6
    g = _export(run_dir, tmp_path / "exact.nir", "--time-scale-s", str(scale_s))
    t_sim = [t / scale_s for t in simulate(g, t_input * scale_s, DT * scale_s)]
    _compare_layers(w, t_input, t_sim)


@pytest.mark.parametrize("factor", [TAU_OVER_WINDOW, 30.0])
def test_portable_graph_simulates_to_the_model_within_one_step_and_the_leak_error(run, tmp_path, factor):
    """The leak error (docs/nir.md): to first order the portable potential is the exact one minus
    sum_j w_ij u_j^2 / tau, u_j = max(0, t - t_j), so a first spike comes later by
    sum_j w_ij u_j^2 / (tau S_i), S_i the slope at firing; |that| <= sum_j |w_ij| u_j^2 / (tau S_i)."""
    run_dir, w = run
    t_input = _images()
    g = _export(run_dir, tmp_path / "portable.nir", "--portable", "--tau-over-window", str(factor))
    tau = g.metadata["portable"]["tau"]

    def leak_delay(wl, t_prev, t_ref, slope):
        with np.errstate(invalid="ignore"):
            u = t_ref[:, None, :] - t_prev[:, :, None]
        u = np.where(np.isfinite(u), np.maximum(u, 0.0), 0.0)
        return (wl[None] * u ** 2).sum(axis=1) / (tau * slope)

    t_sim = simulate(g, t_input, DT)
    largest = max(np.abs(d).max() for d in _compare_layers(w, t_input, t_sim, leak_delay))
    if factor == TAU_OVER_WINDOW:   # the default: the leak stays far inside the step, the graph is the model
        assert 0 < largest < DT
    else:                           # a short tau: the leak delays spikes by more than a step, as predicted
        t_exact = simulate(_export(run_dir, tmp_path / "exact.nir"), t_input, DT)
        moved = max(np.abs(a[np.isfinite(a)] - b[np.isfinite(b)]).max() for a, b in zip(t_sim, t_exact))
        assert largest > DT and moved > DT


def test_cli_errors_are_one_line(run, tmp_path, capsys):
    run_dir, _ = run
    cases = [([str(tmp_path / "missing"), "--out", str(tmp_path / "x.nir")], "model.npz: not found"),
             ([str(run_dir), "--out", str(tmp_path)], "Is a directory; name a file, not a folder"),
             ([str(run_dir), "--out", str(tmp_path / "x.nir"), "--tau-over-window", "100"], "add --portable"),
             ([str(run_dir), "--out", str(tmp_path / "x.nir"), "--portable", "--tau-over-window", "2"],
              "--tau-over-window"),
             ([str(run_dir), "--out", str(tmp_path / "x.nir"), "--time-scale-s", "0"], "--time-scale-s")]
    for argv, needle in cases:
        assert main(["export-nir", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ttfs export-nir: error: ") and needle in err and "\n" not in err
    assert not (tmp_path / "x.nir").exists()
