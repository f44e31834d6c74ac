"""Mapping weights to conductances: the ideal design is the trained model; non-idealities follow the config."""
import numpy as np
import pytest

from hwmodel.behavioural import chip_for_trial, evaluate, input_times_s, layer_times
from hwmodel.chip import draw_chip
from hwmodel.config import HardwareConfig
from hwmodel.design import load_design, save_design
from hwmodel.mapping import map_model
from training.checkpoint import load_model
from training.config import ModelConfig, RunConfig
from training.data import load_split
from infra.errors import ConfigError
from training.evaluate import spike_times
from training.trainer import train
from infra.config import load_config

CONFIG = "configs/mnist-784-400-10.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw-run")
    cfg = load_config(CONFIG, RunConfig, ["model.layers=[784,30,10]", "data.train_limit=500",
                                          "data.test_limit=200", "train.epochs=1"])
    train(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def test_images():
    return load_split("mnist", "test", limit=200)


@pytest.mark.parametrize("changes", [{}, {"scale_by": "capacitance", "v_th_v": 0.3}, {"scheme": "differential"},
                                     {"time_scale_s": 2.5e-8, "c_mem_f": 3e-12, "g_min_s": 0.0}])
def test_ideal_design_reproduces_trained_firing_times(tiny_run, test_images, tmp_path, changes):
    run = load_model(tiny_run)
    hw = load_config("configs/hw/ideal.yaml", HardwareConfig, [f"{k}={v}" for k, v in changes.items()], "hw")
    save_design(map_model(run.weights, run.model, hw, str(tiny_run)), tmp_path / "d")
    design = load_design(tmp_path / "d")             # through the files, as the next stage reads it
    t_input, model_layers = spike_times(run.weights, run.model, test_images.images)
    hw_layers = layer_times(design, t_input * design.time_scale_s)
    for l, (h, m) in enumerate(zip(hw_layers, model_layers)):
        np.testing.assert_array_equal(np.isfinite(h), np.isfinite(m), err_msg=f"layer {l} firing pattern")
        f = np.isfinite(m)
        assert f.mean() > 0.3
        np.testing.assert_allclose(h[f] / design.time_scale_s, m[f], rtol=1e-9, atol=0, err_msg=f"layer {l}")


def test_weight_per_siemens_and_per_layer_scale(tiny_run):
    run = load_model(tiny_run)
    for hw in (HardwareConfig(), HardwareConfig(scale_by="capacitance", v_th_v=0.25)):
        d = map_model(run.weights, run.model, hw)
        for l, w in enumerate(run.weights):
            k = d.weight_per_siemens[l]
            np.testing.assert_allclose(k * (d.g_pos[l] - d.g_neg[l]), w, rtol=0, atol=1e-12 * np.abs(w).max())
            assert d.g_pos[l].max() <= hw.g_max_s * (1 + 1e-12) and d.g_neg[l].min() >= hw.g_min_s * (1 - 1e-12)
            assert np.isclose(max(d.g_pos[l].max(), d.g_neg[l].max()), hw.g_max_s, rtol=1e-12)
            # w = G V_read tau_s v_th / (C V_th): the ideal-integrator identity
            assert np.isclose(k, run.model.v_th * hw.v_read_v * hw.time_scale_s / (d.c_mem_f[l] * d.v_th_v[l]),
                              rtol=1e-12)
        fixed = "c_mem_f" if hw.scale_by == "threshold" else "v_th_v"
        assert all(x == getattr(hw, fixed) for x in getattr(d, fixed))


def _random_weights(shape=(300, 200), seed=0):
    return [np.random.default_rng(seed).normal(0.0, 0.1, shape)]


MODEL = ModelConfig(layers=(300, 200), v_th=1.0, t_in=1.0, t_end=4.0)


@pytest.mark.parametrize("bits", [1, 3, 6])
def test_quantised_conductances_sit_on_the_configured_levels(bits):
    hw = HardwareConfig(bits=bits)
    w = _random_weights()
    d = map_model(w, MODEL, hw)
    exact = map_model(w, MODEL, HardwareConfig())
    step = (hw.g_max_s - hw.g_min_s) / (2 ** bits - 1)
    for g, g0 in ((d.g_pos[0], exact.g_pos[0]), (d.g_neg[0], exact.g_neg[0])):
        level = (g - hw.g_min_s) / step
        np.testing.assert_allclose(level, np.round(level), atol=1e-9)
        assert level.min() >= -1e-9 and level.max() <= 2 ** bits - 1 + 1e-9
        assert np.abs(g - g0).max() <= step / 2 * (1 + 1e-9)
    used = np.unique(np.round((d.g_pos[0] - hw.g_min_s) / step))
    assert len(used) <= 2 ** bits and used[0] == 0 and used[-1] == 2 ** bits - 1
    # a zero weight stays exactly zero (both cells at g_min), and quantisation is the stored chip
    assert np.all(d.g_pos[0][w[0] == 0] == d.g_neg[0][w[0] == 0])
    np.testing.assert_array_equal(d.g_pos[0], d.g_pos_nominal[0])


def test_programming_variation_stuck_cells_and_offsets_follow_the_config():
    hw = HardwareConfig(prog_sigma=0.1, stuck_on_fraction=0.02, stuck_off_fraction=0.03,
                        comparator_offset_v=0.004, comparator_offset_sigma_v=0.01, seed=3)
    d = map_model(_random_weights((400, 500)), ModelConfig(layers=(400, 500), v_th=1.0, t_in=1.0, t_end=4.0), hw)
    gp, nom = d.g_pos[0], d.g_pos_nominal[0]
    n = gp.size
    on = gp == hw.g_max_s
    off = gp == hw.g_min_s
    for frac, mask in ((0.02, on), (0.03, off)):
        assert abs(mask.mean() - frac) < 5 * np.sqrt(frac * (1 - frac) / n)
    ok = ~on & ~off
    r = np.log(gp[ok] / nom[ok])
    assert abs(r.mean()) < 5 * 0.1 / np.sqrt(ok.sum())
    assert abs(r.std() - 0.1) < 5 * 0.1 / np.sqrt(2 * ok.sum())
    off_v = d.offset_v[0]
    assert abs(off_v.mean() - 0.004) < 5 * 0.01 / np.sqrt(off_v.size)
    assert abs(off_v.std() - 0.01) < 5 * 0.01 / np.sqrt(2 * off_v.size)
    # g_pos and g_neg cells draw independently
    assert abs(np.corrcoef(np.log(d.g_pos[0] / d.g_pos_nominal[0]).ravel(),
                           np.log(d.g_neg[0] / d.g_neg_nominal[0]).ravel())[0, 1]) < 0.02


def test_monte_carlo_is_reproducible_from_the_seed(tiny_run, test_images):
    run = load_model(tiny_run)
    hw = load_config("configs/hw/default.yaml", HardwareConfig, section="hw")
    a = map_model(run.weights, run.model, hw)
    b = map_model(run.weights, run.model, hw)
    c = map_model(run.weights, run.model, hw.with_(seed=1))
    for l in range(2):
        np.testing.assert_array_equal(a.g_pos[l], b.g_pos[l])
        np.testing.assert_array_equal(a.offset_v[l], b.offset_v[l])
        assert not np.array_equal(a.g_pos[l], c.g_pos[l])
        # the stored chip is trial 0 of the draws; trial 1 is a different chip
        np.testing.assert_array_equal(draw_chip(a.g_pos_nominal, a.g_neg_nominal, hw, 0).g_pos[l], a.g_pos[l])
        assert not np.array_equal(chip_for_trial(a, 1).g_pos[l], a.g_pos[l])
    imgs, labels = test_images.images[:100], test_images.labels[:100]
    ra = evaluate(a, imgs, labels, trials=3, batch_size=40, progress=False)
    rb = evaluate(b, imgs, labels, trials=3, batch_size=70, progress=False)   # other batching, same result
    for key in ("accuracy_trials", "spikes_per_neuron", "t_error_max", "spike_mismatch"):
        assert ra[key] == rb[key], key
    assert ra["t_error_mean"] == pytest.approx(rb["t_error_mean"], rel=1e-12)   # summed in other batches
    rc = evaluate(c, imgs, labels, trials=3, progress=False)
    assert (ra["t_error_mean"], ra["spike_mismatch"]) != (rc["t_error_mean"], rc["spike_mismatch"])
    # read noise is drawn anew per inference: the same chip, run twice on one image, agrees with
    # itself; two copies of the image (different sample index) see different noise
    t = input_times_s(a, imgs[:1].repeat(2, axis=0))
    out = layer_times(a, t)[0]
    assert np.array_equal(out, layer_times(a, t)[0])
    assert not np.array_equal(out[0], out[1])


def test_out_of_range_weights_error_unless_clipping_is_allowed():
    w = _random_weights()
    hw = HardwareConfig(full_scale_percentile=99.0)
    with pytest.raises(ConfigError) as exc:
        map_model(w, MODEL, hw)
    msg = str(exc.value)
    n_over = int((np.abs(w[0]) > np.percentile(np.abs(w[0]), 99.0)).sum())
    excess = np.abs(w[0]).max() - np.percentile(np.abs(w[0]), 99.0)
    assert "layer 0" in msg and f"{n_over} weights" in msg and f"{excess:.6g}" in msg and "hw.clip_weights" in msg
    d = map_model(w, MODEL, hw.with_(clip_weights=True))
    assert d.n_clipped[0] == n_over
    assert d.g_pos[0].max() <= hw.g_max_s * (1 + 1e-12) and d.g_neg[0].max() <= hw.g_max_s * (1 + 1e-12)


def test_passive_threshold_above_read_voltage_is_an_error():
    with pytest.raises(ConfigError, match="hw.v_th_v"):
        map_model(_random_weights(), MODEL, HardwareConfig(neuron="passive", c_mem_f=1e-13))


def test_fixed_and_common_full_scale():
    from hwmodel.mapping import common_full_scale
    a = _random_weights(seed=1)
    b = [0.5 * a[0]]
    assert common_full_scale([a, b]) == (np.abs(a[0]).max(),)
    hw = HardwareConfig(full_scale_weight=2.0 * np.abs(a[0]).max())
    da, db = map_model(a, MODEL, hw), map_model(b, MODEL, hw)
    # one chip design: the same siemens per unit weight and the same thresholds for both networks
    assert da.weight_per_siemens == db.weight_per_siemens and da.v_th_v == db.v_th_v
    assert np.isclose(max(da.g_pos[0].max(), da.g_neg[0].max()), (hw.g_min_s + hw.g_max_s) / 2, rtol=1e-12)
    np.testing.assert_allclose(db.g_pos[0] - db.g_neg[0], 0.5 * (da.g_pos[0] - da.g_neg[0]), rtol=0, atol=1e-18)
    with pytest.raises(ConfigError, match="raise hw.full_scale_weight"):
        map_model(a, MODEL, HardwareConfig(full_scale_weight=0.5 * np.abs(a[0]).max()))
    with pytest.raises(ConfigError, match="one architecture"):
        common_full_scale([a, _random_weights(shape=(300, 100))])
