"""Shape checks for arrays before they enter a numba kernel.

The kernels do not check bounds: a weight matrix narrower than its input spike times is read past
its end (random results, or a segfault). Every boundary where arrays meet (model vs data, design
vs model, layer l vs layer l+1) calls one of these first, so a mismatch is a one-line error
naming what did not match and what to do.
"""
from __future__ import annotations

import numpy as np

from infra.errors import CheckpointError, DataError


def check_shape(name: str, array, expected: tuple, hint: str = "", error: type[Exception] = DataError) -> None:
    """Raise `error` ("NAME has shape (a, b), expected (c, any); HINT") unless `array` has shape
    `expected` (an entry None accepts any size)."""
    shape = np.shape(array)
    if len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected)):
        return
    want = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
    raise error(f"{name} has shape {shape}, expected {want}" + (f"; {hint}" if hint else ""))


def check_chain(where: str, shapes, n_inputs: int, inputs: str, hint: str = "", name: str = "w",
                error: type[Exception] = CheckpointError) -> None:
    """Layers of shapes [(n_in, n_out), ...] take `n_inputs` inputs and each the previous one's outputs.

    `inputs` says where the inputs come from ("the mnist images have 784 pixels"); layer l is
    called `{name}{l}` in the message, e.g. "RUN/model.npz: w0 expects 700 inputs but the mnist
    images have 784 pixels; HINT".
    """
    n_prev, source = int(n_inputs), inputs
    for l, shape in enumerate(shapes):
        shape = tuple(shape)
        if len(shape) != 2:
            raise error(f"{where}: {name}{l} has shape {shape}, expected (n_in, n_out)" + (f"; {hint}" if hint else ""))
        if shape[0] != n_prev:
            raise error(f"{where}: {name}{l} expects {shape[0]} inputs but {source}" + (f"; {hint}" if hint else ""))
        n_prev, source = shape[1], f"{name}{l} has {shape[1]} outputs"
