"""Threads: the default threading layer, and training that does not depend on the thread count."""
import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]

# One epoch of a tiny model on real MNIST (M-SSR on, so the regulariser's sums are covered too);
# prints the threading layer and thread count, saves the weights to argv[1].
_EPOCH = """
import sys, numba, numpy as np
from training.config import DataConfig, LossConfig, ModelConfig, RegConfig, RunConfig, TrainConfig
from training.trainer import train
cfg = RunConfig(seed=0, data=DataConfig(dataset="mnist", train_limit=256, test_limit=50),
                model=ModelConfig(layers=(784, 24, 24, 10)), loss=LossConfig(),
                train=TrainConfig(epochs=1, batch_size=64, lr=2e-3), reg=RegConfig(kind="m-ssr", strength=1e-3))
train(cfg, sys.argv[1], progress=False)
print(numba.threading_layer(), numba.get_num_threads())
"""


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY"))}


@functools.cache
def _first_loadable_layer() -> str:
    """The first layer of infra.threads.DEFAULT_PRIORITY whose library loads here (asked of a fresh
    process, as numba would)."""
    from infra.threads import DEFAULT_PRIORITY
    for layer in DEFAULT_PRIORITY.split():
        done = subprocess.run([sys.executable, "-c", f"from numba.np.ufunc import {layer}pool"],
                              capture_output=True, timeout=120)
        if done.returncode == 0:
            return layer
    raise AssertionError("no threading layer loads")


def _run_epoch(out: Path, **env_vars) -> str:
    env = _clean_env()
    env.update(env_vars)
    done = subprocess.run([sys.executable, "-c", _EPOCH, str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_two_thread_epoch_gives_the_weights_of_a_one_thread_epoch(tmp_path):
    """Every batch sum runs in an order fixed by the data (sample order per block of neurons, a
    fixed number of regulariser parts), not by the threads: the weights are bit for bit equal."""
    layer = _first_loadable_layer()
    assert _run_epoch(tmp_path / "one", NUMBA_NUM_THREADS="1") == [layer, "1"]
    assert _run_epoch(tmp_path / "two", NUMBA_NUM_THREADS="2") == [layer, "2"]
    with np.load(tmp_path / "one" / "model.npz") as a, np.load(tmp_path / "two" / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files) == ["w0", "w1", "w2"]
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k
        assert np.abs(a["w0"]).max() > 0


def test_the_default_layer_is_the_first_that_loads_with_sleeping_workers_and_the_users_choice_wins():
    """Unset: the first layer of DEFAULT_PRIORITY that loads (omp where an OpenMP runtime is
    installed: make install brings libgomp1) and OMP_WAIT_POLICY=passive, which GNU OpenMP applies
    (its spin count 0, from OMP_DISPLAY_ENV) as it loads at the first launch; an OpenMP runtime
    loaded before (as libngspice would) is too late for that, and workqueue comes first; the user's
    NUMBA_THREADING_LAYER and OMP_WAIT_POLICY are kept."""
    code = ("import os, sys, ctypes\nif sys.argv[1] == 'pre': ctypes.CDLL('libgomp.so.1')\n"
            "import numba, numpy as np\nfrom training import network\nfrom training.config import ModelConfig\n"
            "network.forward([np.ones((3, 2))], np.zeros((2, 3)), ModelConfig(layers=(3, 2)))\n"
            "print(numba.threading_layer(), os.environ['OMP_WAIT_POLICY'])")
    first = _first_loadable_layer()
    for pre, asked, want in (("no", {}, [first, "passive"]),
                             ("no", {"NUMBA_THREADING_LAYER": "workqueue"}, ["workqueue", "passive"]),
                             ("no", {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "active"}, ["omp", "active"]),
                             ("pre", {}, ["workqueue", "passive"]),
                             ("pre", {"NUMBA_THREADING_LAYER": "omp"}, ["omp", "passive"])):
        if pre == "pre" and first != "omp":
            continue                    # no OpenMP runtime here to load first
        done = subprocess.run([sys.executable, "-c", code, pre], cwd=ROOT,
                              env={**_clean_env(), "OMP_DISPLAY_ENV": "verbose", **asked},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == want, (pre, asked)
        if want[0] == "omp" and pre == "no":
            sleeping = "GOMP_SPINCOUNT = '0'" in done.stderr
            assert "GOMP_SPINCOUNT" in done.stderr and sleeping == (want[1] == "passive"), (asked, done.stderr)


_CHOOSER = """
import time, numba
from infra.threads import ThreadCountChooser
def run(cost, steps):
    chooser, used = ThreadCountChooser(probe_steps=3, keep_steps=10), []
    for _ in range(steps):
        chooser.begin()
        used.append(numba.get_num_threads())
        time.sleep(cost[used[-1]])
        chooser.end(100)
        assert numba.get_num_threads() == 3
    return chooser.best, used
print(run({1: 0.002, 2: 0.03, 3: 0.06}, 40))
print(run({1: 0.06, 2: 0.03, 3: 0.002}, 40))
"""


def test_thread_count_chooser_keeps_the_fastest_count():
    """Steps whose time depends on the thread count (sleeps, far apart so that a busy machine
    cannot swap them): after one probe round (three steps at each of 1, 2, 3 after the untimed
    first) the chooser runs the fastest count, then probes again."""
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    done = subprocess.run([sys.executable, "-c", _CHOOSER], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    (best1, used1), (best3, used3) = [eval(line) for line in done.stdout.splitlines()]
    probe = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert used1[:10] == [3] + probe and used3[:10] == [3] + probe
    assert best1 == 1 and used1[10:20] == [1] * 10 and used1[20:29] == probe
    assert used1[29:40] == [1] * 11       # confirmed: the next stretch is twice as long (20 steps)
    assert best3 == 3 and used3[10:20] == [3] * 10
