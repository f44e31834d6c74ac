"""Fixtures several test files share."""
from __future__ import annotations

import numpy as np
import pytest

from training.checkpoint import model_meta, save_model
from training.config import ModelConfig


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with random (untrained) 784-8-10 weights: maps and evaluates in milliseconds."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.01, 0.05, (784, 8)), rng.normal(0.3, 0.5, (8, 10))]
    run = tmp_path_factory.mktemp("random-run") / "run"
    save_model(run, weights, model_meta(ModelConfig(layers=(784, 8, 10)), "mnist", {}))
    return run
