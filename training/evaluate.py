"""Accuracy and the paper's spikes-per-neuron measure over a data split."""
from __future__ import annotations

import numpy as np

from infra.shapes import check_shape
from training import network
from training.config import ModelConfig
from training.encoding import encode_pixels


def spike_times(weights, model: ModelConfig, images, batch_size: int = 500, backend: str = "numba", chip=None):
    """(input times (N, n_in), [layer l times (N, n_l)]) for byte images, in batches; `chip`: the
    layers as a chip computes them (training.chip_layer), which replace `weights`."""
    t_input = encode_pixels(images, model.t_in)
    layers = [[] for _ in weights]
    for start in range(0, len(t_input), batch_size):
        states = network.forward(weights, t_input[start:start + batch_size], model, backend, chip)
        for l, s in enumerate(states):
            layers[l].append(s.t_out)
    return t_input, [np.concatenate(x) for x in layers]


def summarize(layer_times, labels) -> dict:
    """accuracy, spikes per neuron per hidden layer (fired within the window / width, averaged
    over inputs), their mean, the output layer's, n, and per hidden layer the number of silent
    neurons: those that fire for none of the inputs (they get no gradient, so training cannot
    bring them back)."""
    check_shape("labels", labels, (len(layer_times[-1]),), "give one label per image")
    fired = [float(np.isfinite(t).mean()) for t in layer_times]
    hidden = fired[:-1]
    pred = network.predict(layer_times[-1])
    return {
        "accuracy": float((pred == labels).mean()),
        "spikes_per_neuron": hidden,
        "spikes_per_neuron_mean": float(np.mean(hidden)) if hidden else 0.0,
        "output_spikes_per_neuron": fired[-1],
        "n": int(len(labels)),
        "silent_neurons": [int((~np.isfinite(t).any(axis=0)).sum()) for t in layer_times[:-1]],
    }


def evaluate(weights, model: ModelConfig, images, labels, backend: str = "numba", chip=None) -> dict:
    _, layer_times = spike_times(weights, model, images, backend=backend, chip=chip)
    return summarize(layer_times, labels)
