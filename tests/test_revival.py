"""The firing penalty on silent hidden neurons (loss.fire_penalty, docs/model.md): its value against
its definition, its gradient against central finite differences, the "dead" / "silent" selection,
"off" leaving training bit for bit unchanged, and revival of killed neurons on real data.

The penalty is piecewise smooth: its kinks are where a neuron starts or stops firing or an input
crosses t_end. With continuous random inputs none lies within the step h = 1e-6 of the chosen
points, so every weight's derivative must agree to atol 1e-6 (values of order 1-20; the step's
rounding error is ~1e-9).
"""
import dataclasses

import numba
import numpy as np
import pytest

from infra import atomic_io
from infra.config import load_config
from infra.errors import CheckpointError, ConfigError
from training import network
from training.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from training.data import load_split
from training.encoding import encode_pixels
from training.evaluate import evaluate
from training.optim import Adam
from training.trainer import train, train_epoch

from finite_diff import weight_differences

T_END = 4.0
V_TH = 1.0
SIZES = (20, 15, 12, 5)
MODEL = ModelConfig(layers=(784, 1), v_th=V_TH, t_end=T_END)  # only v_th and t_end are read
H = 1e-6
ATOL = 1e-6
COEF = 0.7


def _network():
    """2 hidden layers where some neurons are silent for some samples and some for all of them."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(1.5 / a, 1.0 / np.sqrt(a), (a, n)) for a, n in zip(SIZES[:-1], SIZES[1:])]
    t_in = rng.uniform(0.0, 1.0, (6, SIZES[0]))
    return weights, t_in


def _potential_by_loop(t, w, b, i):
    """v_i(t_end) of sample b, input by input (the definition)."""
    return sum(w[j, i] * (T_END - t[b, j]) for j in range(t.shape[1]) if t[b, j] < T_END)


def _penalty_by_definition(weights, t_in, on, backend="numpy"):
    """COEF * sum over hidden layers and chosen (b, i) of v_th - v_bi(t_end), written out."""
    states = network.forward(weights, t_in, MODEL, backend)
    total = 0.0
    for l in range(len(weights) - 1):
        silent = ~np.isfinite(states[l].t_out)
        dead = silent.all(axis=0)
        for b, i in zip(*np.nonzero(silent)):
            if on == "silent" or dead[i]:
                total += COEF * (V_TH - _potential_by_loop(states[l].t_in, weights[l], b, i))
    return total


def _penalty(weights, t_in, on, backend="numpy"):
    states = network.forward(weights, t_in, MODEL, backend)
    return network.fire_penalty(weights, states, MODEL, COEF, on), states


def test_the_test_network_has_dead_and_partly_silent_neurons():
    weights, t_in = _network()
    states = network.forward(weights, t_in, MODEL, "numpy")
    for s in states[:-1]:
        silent = ~np.isfinite(s.t_out)
        assert silent.all(axis=0).sum() >= 1                          # dead for the whole batch
        assert (silent.any(axis=0) & ~silent.all(axis=0)).sum() >= 1  # silent for some samples only
        assert np.isfinite(s.t_out).any()


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("on", ["dead", "silent"])
def test_fire_penalty_value_and_gradient_match_definition_and_finite_differences(on, backend):
    weights, t_in = _network()
    pen, states = _penalty(weights, t_in, on, backend)
    assert np.isclose(pen.values.sum(), _penalty_by_definition(weights, t_in, on), rtol=1e-12)
    assert pen.values.sum() > 1.0
    zero = np.zeros_like(states[-1].t_out)
    grads, _ = network.gradients(weights, states, zero, MODEL, backend, penalty=pen)
    rng = np.random.default_rng(7)
    for l, w in enumerate(weights):
        flat = rng.choice(w.size, size=min(80, w.size), replace=False)   # all 540 agree too, in 4x the time
        fd = weight_differences(lambda ws: _penalty(ws, t_in, on)[0].values.sum(), weights, l, flat, H)
        np.testing.assert_allclose(grads[l].ravel()[flat], fd, atol=ATOL, rtol=1e-6, err_msg=f"layer {l}")
        if l < len(weights) - 1:
            assert np.abs(fd).max() > 1.0                 # the check is not vacuous
        else:
            assert np.all(grads[l] == 0.0)                # output neurons carry no penalty
    # the penalty on the second hidden layer reaches the first layer's weights through its firing times
    assert np.abs(grads[0] - pen.gw[0]).max() > 0.1


def test_silent_neurons_end_below_threshold_but_so_do_some_firing_ones():
    """A silent neuron's potential at t_end is below v_th (so v_th - v(t_end) > 0 on every penalised
    pair); a firing neuron's may be too (the potential falls after firing), which is why the pairs
    are chosen by silence, not by the sign of the hinge."""
    rng = np.random.default_rng(2)
    t = rng.uniform(0.0, 3.0, (40, 15))
    w = rng.normal(0.1, 1.0, (15, 30))                    # mixed signs: non-monotone potentials
    states = network.forward([w], t, MODEL, "numba")
    v_end, _ = network.potential_at_end(t, w, T_END)
    silent = ~np.isfinite(states[0].t_out)
    assert silent.sum() > 20 and (~silent).sum() > 20
    assert np.all(v_end[silent] < V_TH)
    assert (v_end[~silent] < V_TH).sum() >= 5
    pen = network.fire_penalty([w, np.zeros((30, 1))], network.forward([w, np.zeros((30, 1))], t, MODEL), MODEL,
                               1.0, "silent")
    np.testing.assert_allclose(pen.values, np.where(silent, V_TH - v_end, 0.0).sum(axis=1), rtol=1e-12)


def test_dead_and_silent_select_the_pairs_of_their_definition():
    inf = np.inf
    t_out = np.array([[0.5, inf, inf, 1.0],
                      [inf, inf, 2.0, 1.5],
                      [1.0, inf, inf, 2.5]])
    silent = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]], bool)
    dead = np.array([[0, 1, 0, 0]] * 3, bool)             # neuron 1 is silent for every sample
    assert np.array_equal(network.penalised_pairs(t_out, "silent"), silent)
    assert np.array_equal(network.penalised_pairs(t_out, "dead"), dead)
    assert not network.penalised_pairs(t_out[:, [0, 3]], "dead").any()
    with pytest.raises(ValueError):
        network.penalised_pairs(t_out, "all")


def _random_task(n=256, seed=5):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (n, 784)), rng.integers(0, 10, n)


def _tiny_run(loss=LossConfig()):
    return RunConfig(model=ModelConfig(layers=(784, 12, 12, 10)), loss=loss,
                     train=TrainConfig(epochs=1, batch_size=32, lr=1e-3))


def _killed_weights(cfg, n_kill):
    weights = network.init_weights(cfg.model.layers, 2.0, 1.4, 0)
    for w in weights[:-1]:
        w[:, :n_kill] = -np.abs(w[:, :n_kill])           # these hidden neurons never fire
    return weights


def _epoch(cfg, t, labels, weights):
    opt = Adam([w.shape for w in weights], cfg.train.lr)
    train_epoch(weights, opt, cfg, t, labels, 0, progress=False)
    return weights


def test_fire_penalty_off_reproduces_todays_training_bit_for_bit():
    """train_epoch without the key, with fire_penalty 0 (either selection), and today's loop written
    out (forward, loss, gradients without a penalty, Adam) give the same weights; a penalty changes them."""
    t, labels = _random_task()
    absent = _tiny_run()
    reference = _killed_weights(absent, 3)
    opt = Adam([w.shape for w in reference], absent.train.lr)
    perm = np.random.default_rng([absent.seed, 0]).permutation(len(labels))
    for start in range(0, len(perm), absent.train.batch_size):
        idx = perm[start:start + absent.train.batch_size]
        states = network.forward(reference, t[idx], absent.model)
        _, delta = network.output_loss(states[-1].t_out, labels[idx], absent.model, absent.loss)
        grads, _ = network.gradients(reference, states, delta / len(idx), absent.model)
        opt.step(reference, grads)
    runs = {"absent": absent, "zero-dead": _tiny_run(LossConfig(fire_penalty=0.0)),
            "zero-silent": _tiny_run(LossConfig(fire_penalty=0.0, fire_penalty_on="silent")),
            "on": _tiny_run(LossConfig(fire_penalty=1e-2))}
    weights = {name: _epoch(cfg, t, labels, _killed_weights(cfg, 3)) for name, cfg in runs.items()}
    for name in ("absent", "zero-dead", "zero-silent"):
        assert all(np.array_equal(a, b) for a, b in zip(reference, weights[name])), name
    assert not np.array_equal(reference[0], weights["on"][0])


def test_fire_penalty_epochs_turns_the_penalty_off_from_that_epoch():
    """With fire_penalty_epochs N, epochs before N train as with the penalty and epochs from N on as
    without it, bit for bit (each epoch from the same weights and a fresh Adam)."""
    t, labels = _random_task()
    on, off = _tiny_run(LossConfig(fire_penalty=1e-2)), _tiny_run(LossConfig())
    scheduled = _tiny_run(LossConfig(fire_penalty=1e-2, fire_penalty_epochs=1))
    for epoch, same_as, other in ((0, on, off), (1, off, on), (2, off, on)):
        def run(cfg):
            weights = _killed_weights(cfg, 3)
            train_epoch(weights, Adam([w.shape for w in weights], cfg.train.lr), cfg, t, labels, epoch,
                        progress=False)
            return weights
        got, want, not_want = run(scheduled), run(same_as), run(other)
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), epoch
        assert not np.array_equal(got[0], not_want[0]), epoch
    assert scheduled.loss.fire_coef(0) == 1e-2 and scheduled.loss.fire_coef(1) == 0.0
    assert on.loss.fire_coef(10 ** 6) == 1e-2
    assert _tiny_run(LossConfig(fire_penalty=1e-2, fire_penalty_epochs=0)).loss.fire_coef(0) == 0


def test_fire_penalty_is_logged_when_on(tmp_path):
    cfg = dataclasses.replace(_tiny_run(LossConfig(fire_penalty=1e-2, fire_penalty_on="silent")),
                              data=DataConfig(train_limit=200, test_limit=50))
    rec = train(cfg, tmp_path / "on", progress=False)
    assert rec["train_fire_penalty"] > 0
    off = train(dataclasses.replace(cfg, loss=LossConfig()), tmp_path / "off", progress=False)
    assert "train_fire_penalty" not in off


def test_fire_penalty_revives_killed_neurons_on_mnist():
    """784-64-64-10 on the first 2,000 MNIST images with 16 neurons per hidden layer killed (all input
    weights negative): after 2 epochs, fewer hidden neurons fire for no test image with the penalty,
    in every layer. (Adam moves a dead neuron's weights by about lr per step whatever lambda, so the
    deeper killed neurons, whose 64 weights start ~0.17 below zero, need more than these 63 steps.)"""
    numba.set_num_threads(1)      # tiny batches: thread hand-offs cost more than they save
    train_set = load_split("mnist", "train", None, 2000)
    test_set = load_split("mnist", "test", None, 500)
    t = encode_pixels(train_set.images, 1.0)
    never_fire = {}
    for lam in (0.0, 1e-2):
        cfg = RunConfig(model=ModelConfig(layers=(784, 64, 64, 10)),
                        loss=LossConfig(tau_soft=0.3, fire_penalty=lam),
                        train=TrainConfig(epochs=2, batch_size=64, lr=1e-3))
        weights = _killed_weights(cfg, 16)
        before = evaluate(weights, cfg.model, test_set.images, test_set.labels)["silent_neurons"]
        assert all(n >= 16 for n in before), before
        opt = Adam([w.shape for w in weights], cfg.train.lr)
        for epoch in range(2):
            train_epoch(weights, opt, cfg, t, train_set.labels, epoch, progress=False)
        never_fire[lam] = evaluate(weights, cfg.model, test_set.images, test_set.labels)["silent_neurons"]
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    with_penalty, without = never_fire[1e-2], never_fire[0.0]
    assert all(n >= 16 for n in without), never_fire                # no killed neuron comes back without it
    assert all(a < b for a, b in zip(with_penalty, without)), never_fire
    assert sum(with_penalty) <= 0.75 * sum(without), never_fire
    assert with_penalty[0] < 16, never_fire                         # killed first-layer neurons came back


@pytest.mark.parametrize("item,message", [
    ("loss.fire_penalty=-0.1", "loss.fire_penalty: must be a finite number >= 0 (got -0.1)"),
    ("loss.fire_penalty=.inf", "loss.fire_penalty: must be a finite number"),
    ("loss.fire_penalty=.nan", "loss.fire_penalty: must be a finite number"),
    ("loss.fire_penalty=lots", "loss.fire_penalty: expected a number"),
    ("loss.fire_penalty_on=all", "loss.fire_penalty_on: must be one of dead, silent (got 'all')"),
    ("loss.fire_penalty_epochs=-1", "loss.fire_penalty_epochs: must be >= 0, or null for every epoch (got -1)"),
    ("loss.fire_penalty_epochs=2.5", "loss.fire_penalty_epochs: expected an integer"),
    ("loss.fire_penalty_epochs=3", "loss.fire_penalty_epochs: limits the firing penalty to the first epochs, "
                                   "so it needs loss.fire_penalty > 0"),
])
def test_fire_penalty_keys_are_validated(item, message):
    with pytest.raises(ConfigError) as exc:
        load_config(None, RunConfig, [item])
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="^loss.fire_penalty: "):
            LossConfig(fire_penalty=bad)
    cfg = load_config(None, RunConfig, ["loss.fire_penalty=1e-2", "loss.fire_penalty_on=silent"])
    assert cfg.loss.fire_penalty == 1e-2 and cfg.loss.fire_penalty_on == "silent"
    assert LossConfig().fire_penalty == 0.0 and LossConfig().fire_penalty_on == "dead"


def test_a_run_saved_before_the_keys_existed_resumes(tmp_path):
    """config.yaml of a run trained before loss.fire_penalty existed lacks the keys: resuming it with
    the penalty off is allowed (a missing key counts as its default), turning it on is refused."""
    cfg = dataclasses.replace(_tiny_run(), data=DataConfig(train_limit=100, test_limit=20))
    run = tmp_path / "old"
    train(cfg, run, progress=False)
    saved = atomic_io.read_yaml(run / "config.yaml", CheckpointError)
    del saved["loss"]["fire_penalty"], saved["loss"]["fire_penalty_on"]
    atomic_io.write_yaml(run / "config.yaml", saved)
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    assert train(longer, run, resume=True, progress=False)["epoch"] == 2
    on = dataclasses.replace(longer, loss=LossConfig(fire_penalty=1e-3),
                             train=dataclasses.replace(cfg.train, epochs=3))
    with pytest.raises(CheckpointError, match="loss.fire_penalty"):
        train(on, run, resume=True, progress=False)
