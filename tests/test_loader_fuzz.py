"""Property-style: every loader of a file another stage or the user hands over, fed random bytes
(non-UTF-8, NUL, truncated copies of a valid file, flipped bytes) and valid containers with random
shapes, dtypes and values, either succeeds or raises one TtfsError whose one-line message names
the file or folder; never another exception. Seeded numpy RNG (no hypothesis), ~40 cases a loader."""
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from energy.config import EnergyConfig
from hwmodel.config import HardwareConfig
from hwmodel.design import load_design, save_design
from hwmodel.mapping import map_model
from infra import atomic_io
from infra.config import load_config
from infra.errors import ConfigError, TtfsError
from netlists.runner import compare, read_results
from training.checkpoint import load_model, model_meta, save_model
from training.config import ModelConfig, RunConfig
from training.data import read_idx
from training.sweep import read_tradeoff, write_tradeoff

REPO = Path(__file__).resolve().parents[1]
N_CASES = 40
LAYERS = (6, 4, 3)
# Values a hand-edited or hostile file may hold in place of any other.
ODD_VALUES = [None, True, False, 0, -1, 2**70, 1e308, float("nan"), float("inf"), -float("inf"), "", "x\ny",
              "\u00e9\x00", [], [1, "a"], [[[]]], {}, {"k": [1]}, "2020-13-45", 3.5, [1e-3] * 3]


def random_bytes(rng, valid: bytes):
    """Random bytes, a truncated or byte-flipped copy of `valid`, or `valid` with junk appended."""
    kind = int(rng.integers(6))
    if kind == 0:
        return "random", rng.integers(0, 256, int(rng.integers(0, 600)), dtype=np.uint8).tobytes()
    if kind == 1:
        cut = int(rng.integers(0, max(len(valid), 1)))
        return f"truncated at {cut}", valid[:cut]
    if kind == 2:
        b = bytearray(valid)
        for i in rng.integers(0, max(len(b), 1), int(rng.integers(1, 8))):
            if b:
                b[i] = int(rng.integers(0, 256))
        return "flipped bytes", bytes(b)
    if kind == 3:
        return "non-UTF-8 and NUL", valid[: len(valid) // 2] + b"\xff\xfe\x00\xc3(" + valid[len(valid) // 2:]
    if kind == 4:
        return "junk appended", valid + rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    return "empty", b""


def odd_value(rng):
    return ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]


def mutate_mapping(rng, data):
    """`data` (a nested mapping) with one key's value replaced, a key removed or an unknown key added."""
    data = yaml.safe_load(yaml.safe_dump(data))
    node = data
    while isinstance(node, dict) and node and rng.random() < 0.5:
        child = node[list(node)[int(rng.integers(len(node)))]]
        if not isinstance(child, dict):
            break
        node = child
    if not isinstance(node, dict) or not node:
        return "top level replaced", odd_value(rng)
    key = list(node)[int(rng.integers(len(node)))]
    op = int(rng.integers(4))
    if op == 0:
        del node[key]
        return f"{key} removed", data
    if op == 1:
        node[int(rng.integers(9))] = 1
        return "integer key added", data
    node[key] = odd_value(rng)
    return f"{key} = {node[key]!r:.30}", data


def random_array(rng):
    shape = tuple(int(n) for n in rng.integers(0, 7, int(rng.integers(0, 4))))
    dtype = [np.float64, np.float32, np.int8, np.uint8, np.bool_, np.complex128, "<U3", "M8[s]"][int(rng.integers(8))]
    a = np.zeros(shape, dtype=dtype)
    if a.dtype.kind == "f":
        a = rng.choice([0.0, 1e-5, -3.0, np.nan, np.inf], shape).astype(dtype)
    return a


def mutate_npz(rng, arrays: dict) -> tuple[str, bytes]:
    arrays = dict(arrays)
    name = list(arrays)[int(rng.integers(len(arrays)))]
    op = int(rng.integers(5))
    if op == 0:
        del arrays[name]
        what = f"{name} removed"
    elif op == 1:
        arrays[f"w{int(rng.integers(9))}x"] = random_array(rng)
        what = "extra array"
    elif op == 2:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:                 # a member that is no .npy
            zf.writestr(name + ".npy", b"not an array")
        return f"{name} not .npy", buf.getvalue()
    elif op == 3:
        buf = io.BytesIO()
        np.savez(buf, **{name: np.array([{"a": 1}], dtype=object)})     # a pickle
        return f"{name} pickled object", buf.getvalue()
    else:
        arrays[name] = random_array(rng)
        what = f"{name} {arrays[name].dtype} {arrays[name].shape}"
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return what, buf.getvalue()


def assert_clean(load, case_dir: Path, what: str):
    """`load()` returns, or raises one TtfsError naming a path under `case_dir`, on one line."""
    try:
        load()
    except TtfsError as exc:
        msg = str(exc)
        assert "\n" not in msg, f"{what}: message spans lines: {msg!r}"
        assert str(case_dir) in msg, f"{what}: message does not name the file: {msg!r}"
    except Exception as exc:   # noqa: BLE001 - the property under test
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """One valid copy of every file kind."""
    root = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.3, 0.5, (a, b)) for a, b in zip(LAYERS[:-1], LAYERS[1:])]
    model = ModelConfig(layers=LAYERS)
    save_model(root / "run", weights, model_meta(model, "mnist", {"epochs_completed": 1}))
    save_design(map_model(weights, model, HardwareConfig(comparator_offset_sigma_v=1e-3)), root / "design")
    rows = [{"run": "none", "dataset": "mnist", "layers": "6-4-3", "kind": "none", "strength": 0.0, "v_hat": "",
             "epochs": 1, "accuracy": 0.5, "spikes_per_neuron_l1": 0.4, "spikes_per_neuron_mean": 0.4,
             "output_spikes_per_neuron": 0.9},
            {"run": "m-ssr_s1e-05", "dataset": "mnist", "layers": "6-4-3", "kind": "m-ssr", "strength": 1e-5,
             "v_hat": "", "epochs": 1, "accuracy": 0.4, "spikes_per_neuron_l1": 0.2, "spikes_per_neuron_mean": 0.2,
             "output_spikes_per_neuron": 0.8}]
    write_tradeoff(root, rows)
    behavioural = [np.array([1e-6, np.inf, 2e-6, 3e-6]), np.array([2e-6, np.inf, 3e-6])]
    sim = {"status": "ok", "times": [t.tolist() for t in behavioural], "retried": False, "errors": [],
           "seconds": 1.0, "cpu_seconds": 0.9}
    failed = {"status": "failed", "times": None, "retried": True, "errors": ["no convergence"], "seconds": 2.0,
              "cpu_seconds": 2.0}
    results = [compare(0, 1, sim, behavioural, 4e-6), compare(1, 2, failed, behavioural, 4e-6)]
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    (root / "images.idx").write_bytes(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
                                      + images.tobytes())
    return root


def yaml_cases(rng, path: Path):
    """(what, bytes) fuzz cases for a YAML file: raw bytes half the time, a mutated mapping otherwise."""
    text = path.read_bytes()
    data = yaml.safe_load(text)
    for i in range(N_CASES):
        if i % 2:
            yield random_bytes(rng, text)
        else:
            what, value = mutate_mapping(rng, data)
            yield what, yaml.safe_dump(value, allow_unicode=True).encode()


@pytest.mark.parametrize("seed, cls, section, path", [(10, RunConfig, "", "configs/mnist-784-400-10.yaml"),
                                                       (11, HardwareConfig, "hw", "configs/hw/default.yaml"),
                                                       (12, EnergyConfig, "energy", "configs/energy/default.yaml")])
def test_load_config_and_read_yaml(tmp_path, seed, cls, section, path):
    rng = np.random.default_rng(seed)
    for i, (what, data) in enumerate(yaml_cases(rng, REPO / path)):
        case = tmp_path / f"case{i}"
        case.mkdir()
        (case / "c.yaml").write_bytes(data)
        assert_clean(lambda: load_config(case / "c.yaml", cls, section=section), case, f"{cls.__name__} {what}")
        assert_clean(lambda: atomic_io.read_yaml(case / "c.yaml", ConfigError), case, f"read_yaml {what}")


def test_load_model(tmp_path, valid):
    rng = np.random.default_rng(1)
    with np.load(valid / "run" / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    yaml_gen = yaml_cases(rng, valid / "run" / "model.yaml")
    for i in range(N_CASES):
        case = tmp_path / f"case{i}"
        shutil.copytree(valid / "run", case)
        if i % 3 == 0:
            what, data = random_bytes(rng, (valid / "run" / "model.npz").read_bytes())
            (case / "model.npz").write_bytes(data)
        elif i % 3 == 1:
            what, data = mutate_npz(rng, arrays)
            (case / "model.npz").write_bytes(data)
        else:
            what, data = next(yaml_gen)
            (case / "model.yaml").write_bytes(data)
        assert_clean(lambda: load_model(case), case, f"model {what}")


def test_load_design(tmp_path, valid):
    rng = np.random.default_rng(2)
    with np.load(valid / "design" / "design.npz") as z:
        arrays = {k: z[k] for k in z.files}
    yaml_gen = yaml_cases(rng, valid / "design" / "design.yaml")
    for i in range(N_CASES + 10):
        case = tmp_path / f"case{i}"
        shutil.copytree(valid / "design", case)
        if i % 3 == 0:
            what, data = random_bytes(rng, (valid / "design" / "design.npz").read_bytes())
            (case / "design.npz").write_bytes(data)
        elif i % 3 == 1:
            what, data = mutate_npz(rng, arrays)
            (case / "design.npz").write_bytes(data)
        else:
            what, data = next(yaml_gen)
            (case / "design.yaml").write_bytes(data)
        assert_clean(lambda: load_design(case), case, f"design {what}")


def test_read_npz_and_read_json(tmp_path, valid):
    rng = np.random.default_rng(3)
    npz = (valid / "run" / "model.npz").read_bytes()
    text = json.dumps({"design": "/x", "start": 0, "t_rise_s": None}).encode()
    for i in range(N_CASES):
        case = tmp_path / f"case{i}"
        case.mkdir()
        what, data = random_bytes(rng, npz)
        (case / "a.npz").write_bytes(data)
        assert_clean(lambda: atomic_io.read_npz(case / "a.npz", ConfigError), case, f"npz {what}")
        what, data = random_bytes(rng, text)
        (case / "a.json").write_bytes(data)
        assert_clean(lambda: atomic_io.read_json(case / "a.json", ConfigError), case, f"json {what}")


def test_read_idx(tmp_path, valid):
    import gzip
    rng = np.random.default_rng(4)
    raw = (valid / "images.idx").read_bytes()
    for i in range(N_CASES):
        case = tmp_path / f"case{i}"
        case.mkdir()
        if i % 4 == 3:        # a header declaring random dimensions, with or without data
            ndim = int(rng.integers(0, 256))
            dims = rng.integers(0, 2**32, ndim, dtype=np.uint64) if rng.random() < 0.5 else rng.integers(0, 4, ndim)
            what = f"header {ndim} dims"
            data = bytes([0, 0, int(rng.choice([8, 9, 11, 12, 13, 14])), ndim]) + b"".join(
                int(n).to_bytes(4, "big") for n in dims) + raw[16:16 + int(rng.integers(0, 64))]
        else:
            what, data = random_bytes(rng, raw)
        path = case / ("x.gz" if i % 2 else "x")
        if i % 2 and i % 3:
            data = gzip.compress(data)
            what += " gzipped"
        elif i % 2:                       # a damaged .gz
            what, data = random_bytes(rng, gzip.compress(raw))
            what += " of a .gz"
        path.write_bytes(data)
        assert_clean(lambda: read_idx(path), case, f"idx {what}")


def test_read_tradeoff(tmp_path, valid):
    rng = np.random.default_rng(5)
    text = (valid / "tradeoff.csv").read_bytes()
    lines = text.decode().splitlines()
    for i in range(N_CASES):
        case = tmp_path / f"case{i}"
        case.mkdir()
        if i % 2:
            what, data = random_bytes(rng, text)
        else:                 # one cell replaced by a random value, or a row with a cell more or less
            row = int(rng.integers(1, len(lines)))
            cells = lines[row].split(",")
            op = int(rng.integers(3))
            if op == 0:
                cells[int(rng.integers(len(cells)))] = str(odd_value(rng)).replace("\n", " ")
            elif op == 1:
                cells.append("1")
            else:
                cells.pop()
            what = f"row {row}: {','.join(cells)[:40]}"
            data = "\n".join(lines[:row] + [",".join(cells)] + lines[row + 1:]).encode()
        (case / "tradeoff.csv").write_bytes(data)
        assert_clean(lambda: read_tradeoff(case / "tradeoff.csv"), case, f"tradeoff {what}")


def test_read_results_and_read_jsonl(tmp_path, valid):
    rng = np.random.default_rng(6)
    text = (valid / "results.jsonl").read_bytes()
    records = [json.loads(line) for line in text.decode().splitlines()]
    for i in range(N_CASES):
        case = tmp_path / f"case{i}"
        case.mkdir()
        if i % 2:
            what, data = random_bytes(rng, text)
        else:
            what, rec = mutate_mapping(rng, records[int(rng.integers(len(records)))])
            data = text + json.dumps(rec).encode() + b"\n"
        (case / "results.jsonl").write_bytes(data)
        assert_clean(lambda: read_results(case / "results.jsonl", len(LAYERS) - 1), case, f"results {what}")
        assert_clean(lambda: atomic_io.read_jsonl(case / "results.jsonl"), case, f"read_jsonl {what}")


def test_valid_files_load(valid):
    """The unmutated files the cases start from load: the fuzzing perturbs something that works."""
    assert load_model(valid / "run").model.layers == LAYERS
    assert load_design(valid / "design").layers == LAYERS
    assert [r["run"] for r in read_tradeoff(valid / "tradeoff.csv")] == ["none", "m-ssr_s1e-05"]
    assert list(read_results(valid / "results.jsonl", 2)) == [0, 1]
    assert read_idx(valid / "images.idx").shape == (3, 28, 28)
    for cls, path in [(RunConfig, "configs/mnist-784-400-10.yaml"), (HardwareConfig, "configs/hw/default.yaml"),
                      (EnergyConfig, "configs/energy/default.yaml")]:
        assert isinstance(load_config(REPO / path, cls), cls)
