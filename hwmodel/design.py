"""The design folder `ttfs map` writes: DESIGN/design.npz and DESIGN/design.yaml.

The contract is docs/design-format.md. Besides the named keys, design.npz holds the nominal
(quantised, before variation) conductances `g_pos_nominal{l}`/`g_neg_nominal{l}`, each neuron's
comparator offset `offset_v{l}` of the stored chip, and the source model's weights `w{l}`
(so Monte-Carlo trials and sweeps can re-draw or re-map without the run folder).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwmodel.chip import Chip
from hwmodel.config import HardwareConfig, check_circuit
from infra import atomic_io, provenance
from infra.fingerprint import arrays_digest, digest
from infra.config import build, require
from training.checkpoint import model_config
from training.config import ModelConfig
from training.data import DATASETS
from infra.errors import CheckpointError, ConfigError

FORMAT = "ttfs-design/1"
_HOW = "make one with 'ttfs map RUN --hw default --out DESIGN'"


@dataclass(frozen=True)
class Design:
    """A trained network mapped onto a crossbar; every physical value in SI units."""

    source_run: str
    dataset: str
    layers: tuple
    t_in_s: float               # the model's t_in x hw.time_scale_s
    t_end_s: float              # the window end, model t_end x hw.time_scale_s
    c_mem_f: tuple              # per layer
    v_th_v: tuple               # per layer (before comparator offset)
    weight_per_siemens: tuple   # per layer: model weight = this * (g_pos - g_neg), ideal integrator
    full_scale_weight: tuple    # per layer: |w| mapped to g_max_s - g_min_s
    n_clipped: tuple            # per layer: weights clipped to full scale
    hw: HardwareConfig
    model: ModelConfig          # the source model's constants (v_th, t_in, t_end in model time)
    g_pos: list = field(repr=False)
    g_neg: list = field(repr=False)
    g_pos_nominal: list = field(repr=False)
    g_neg_nominal: list = field(repr=False)
    offset_v: list = field(repr=False)
    weights: list = field(repr=False)
    noise_seed: int = 0
    # sha256 of what was loaded (design.npz's arrays and design.yaml less its provenance): what
    # resume records and caches key on. Empty for a design not read from a folder.
    content_sha256: str = field(default="", repr=False)
    # The folder it was read from ("" if not read from one): where per-chip caches live (wire_model).
    folder: str = field(default="", repr=False, compare=False)

    # The hardware keys every stage reads, from the one place they are held (hw).
    neuron = property(lambda self: self.hw.neuron)
    scheme = property(lambda self: self.hw.scheme)
    time_scale_s = property(lambda self: self.hw.time_scale_s)
    v_read_v = property(lambda self: self.hw.v_read_v)
    g_min_s = property(lambda self: self.hw.g_min_s)
    g_max_s = property(lambda self: self.hw.g_max_s)
    comparator_offset_v = property(lambda self: self.hw.comparator_offset_v)
    comparator_offset_sigma_v = property(lambda self: self.hw.comparator_offset_sigma_v)
    comparator_delay_s = property(lambda self: self.hw.comparator_delay_s)
    opamp_gain = property(lambda self: self.hw.opamp_gain)
    r_wire_row_ohm = property(lambda self: self.hw.r_wire_row_ohm)
    r_wire_col_ohm = property(lambda self: self.hw.r_wire_col_ohm)
    read_noise_rel = property(lambda self: self.hw.read_noise_rel)
    # Per-layer (n_out,) offset of every comparator of the stored chip (systematic + random), volts.
    comparator_offsets_v = property(lambda self: self.offset_v)

    @property
    def n_layers(self) -> int:
        return len(self.g_pos)

    def stored_chip(self) -> Chip:
        """The chip whose conductances design.npz holds (Monte-Carlo trial 0)."""
        return Chip(self.g_pos, self.g_neg, self.offset_v, self.noise_seed, 0)

    def meta(self) -> dict:
        """design.yaml's content: what the mapping chose per design and layer, and under `hw:` the
        hardware config (every non-ideality, once)."""
        return {
            "format": FORMAT,
            "source_run": self.source_run,
            "dataset": self.dataset,
            "layers": list(self.layers),
            "t_in_s": self.t_in_s,
            "t_end_s": self.t_end_s,
            "c_mem_f": [float(x) for x in self.c_mem_f],
            "v_th_v": [float(x) for x in self.v_th_v],
            "weight_per_siemens": [float(x) for x in self.weight_per_siemens],
            "full_scale_weight": [float(x) for x in self.full_scale_weight],
            "n_clipped": [int(x) for x in self.n_clipped],
            "noise_seed": int(self.noise_seed),
            "model": {"v_th": self.model.v_th, "t_in": self.model.t_in, "t_end": self.model.t_end},
            "units": "SI (s, V, F, S, ohm); model weights and model times are dimensionless",
            "hw": self.hw.to_dict(),
            provenance.KEY: provenance.provenance(),
        }


def save_design(design: Design, out: str | Path) -> None:
    out = Path(out)
    arrays = {}
    for l in range(design.n_layers):
        arrays[f"g_pos{l}"] = design.g_pos[l]
        arrays[f"g_neg{l}"] = design.g_neg[l]
        arrays[f"g_pos_nominal{l}"] = design.g_pos_nominal[l]
        arrays[f"g_neg_nominal{l}"] = design.g_neg_nominal[l]
        arrays[f"offset_v{l}"] = design.offset_v[l]
        arrays[f"w{l}"] = design.weights[l]
    meta = design.meta()
    try:    # validate first, write last: what load_design would refuse is never written
        build(DesignMeta, {k: v for k, v in meta.items() if k in _FIELDS}).check_model(design.model)
        check_arrays(arrays, design.layers, design.hw)
    except ConfigError as exc:
        raise ConfigError(f"the mapped design is not usable ({exc}); change the hardware config") from None
    arrays = {k: np.asarray(a, dtype=np.float64) for k, a in arrays.items()}
    meta[ARRAYS_KEY] = arrays_digest(arrays)   # pairs the two files: design.yaml is written last
    atomic_io.write_npz(out / "design.npz", **arrays)
    atomic_io.write_yaml(out / "design.yaml", meta)


# Top-level keys that design.yaml files written before each non-ideality was stored once held as
# copies of their `hw:` key. Nothing reads them; where an old file has one it must equal `hw:`
# (a hand edit of the copy alone would otherwise be silently ignored).
HW_COPIES = ("neuron", "scheme", "time_scale_s", "v_read_v", "g_min_s", "g_max_s", "bits", "prog_sigma",
             "read_noise_rel", "stuck_on_fraction", "stuck_off_fraction", "comparator_offset_v",
             "comparator_offset_sigma_v", "comparator_delay_s", "opamp_gain", "r_wire_row_ohm", "r_wire_col_ohm")


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


@dataclass(frozen=True)
class DesignMeta:
    """design.yaml as read back (`load_design` builds it with infra.config.build, so every number is
    typed and finite): values in range, per-layer lists one per layer, and the copies of `hw:` keys
    an older file holds (HW_COPIES) equal to them. A copy given as null or left out is not compared."""

    format: str
    dataset: str
    layers: tuple[int, ...]
    t_in_s: float
    t_end_s: float
    c_mem_f: tuple[float, ...]
    v_th_v: tuple[float, ...]
    weight_per_siemens: tuple[float, ...]
    hw: HardwareConfig
    source_run: str = ""
    full_scale_weight: tuple[float, ...] | None = None
    n_clipped: tuple[int, ...] | None = None
    noise_seed: int = 0
    units: str = ""
    # copies of hw keys in older files (HW_COPIES)
    neuron: str | None = None
    scheme: str | None = None
    time_scale_s: float | None = None
    v_read_v: float | None = None
    g_min_s: float | None = None
    g_max_s: float | None = None
    bits: int | None = None
    prog_sigma: float | None = None
    read_noise_rel: float | None = None
    stuck_on_fraction: float | None = None
    stuck_off_fraction: float | None = None
    comparator_offset_v: float | None = None
    comparator_offset_sigma_v: float | None = None
    comparator_delay_s: float | None = None
    opamp_gain: float | None = None
    r_wire_row_ohm: float | None = None
    r_wire_col_ohm: float | None = None

    def __post_init__(self):
        require(self.dataset in DATASETS, "dataset", f"must be one of {', '.join(DATASETS)} (got {self.dataset!r})")
        require(len(self.layers) >= 2 and min(self.layers) >= 1, "layers",
                f"must be at least two positive layer sizes (got {list(self.layers)})")
        hw = self.hw
        if self.neuron is not None or self.scheme is not None:
            check_circuit(hw.neuron if self.neuron is None else self.neuron,
                          hw.scheme if self.scheme is None else self.scheme)
        for key in ("time_scale_s", "v_read_v", "t_end_s", "t_in_s"):
            value = getattr(self, key)
            require(value is None or value > 0, key, f"must be > 0 (got {value})")
        require(self.t_end_s > self.t_in_s, "t_end_s", f"must be > t_in_s (got {self.t_end_s} <= {self.t_in_s})")
        require(self.g_min_s is None or self.g_min_s >= 0, "g_min_s", f"must be >= 0 (got {self.g_min_s})")
        g_min = hw.g_min_s if self.g_min_s is None else self.g_min_s
        require(self.g_max_s is None or self.g_max_s > g_min, "g_max_s",
                f"must be > g_min_s (got {self.g_max_s} <= {g_min})")
        n = len(self.layers) - 1
        for key, low in (("c_mem_f", 0), ("v_th_v", 0), ("weight_per_siemens", 0), ("full_scale_weight", 0),
                         ("n_clipped", -1)):
            values = getattr(self, key)
            if values is None:
                continue
            require(len(values) == n, key, f"has {len(values)} values for {n} layers (one per layer)")
            for l, v in enumerate(values):
                require(v > low, key, f"must be {'>= 0' if low < 0 else '> 0'} (got {v} in layer {l})")
        require(self.noise_seed >= 0, "noise_seed", f"must be >= 0 (got {self.noise_seed})")
        for key in HW_COPIES:
            value = getattr(self, key)
            require(value is None or _same(value, getattr(hw, key)), key,
                    f"is {value!r} but hw.{key} is {getattr(hw, key)!r}; they must agree")
        fixed = "c_mem_f" if hw.scale_by == "threshold" else "v_th_v"   # the other one the mapping chose
        for l, v in enumerate(getattr(self, fixed)):
            require(_same(v, getattr(hw, fixed)), fixed, f"layer {l} is {v!r} but hw.{fixed} is "
                    f"{getattr(hw, fixed)!r} (hw.scale_by: {hw.scale_by} keeps it); they must agree")
        if hw.full_scale_weight is not None and self.full_scale_weight is not None:
            for l, v in enumerate(self.full_scale_weight):
                want = hw.full_scale_of(l, n)
                require(_same(v, want), "full_scale_weight", f"layer {l} is {v!r} but hw.full_scale_weight "
                                                             f"gives {want!r}; they must agree")

    def check_model(self, model: ModelConfig) -> None:
        """The window in seconds is the model's window times time_scale_s."""
        for key, t in (("t_in_s", model.t_in), ("t_end_s", model.t_end)):
            want = t * self.hw.time_scale_s
            require(_same(getattr(self, key), want), key, f"is {getattr(self, key):.6g} but model.{key[:-2]} x "
                                                          f"hw.time_scale_s is {want:.6g}; they must agree")


_FIELDS = {f.name for f in dataclasses.fields(DesignMeta)}
# design.yaml's digest of the arrays in design.npz (infra.fingerprint.arrays_digest), written by
# save_design; a folder whose npz does not match it is half of two mappings (an interrupted map).
ARRAYS_KEY = "arrays_sha256"
_CONDUCTANCES = ("g_pos", "g_neg", "g_pos_nominal", "g_neg_nominal")
_ARRAYS = (*_CONDUCTANCES, "offset_v", "w")
_SIGMAS = 8.0       # a drawn value beyond 8 standard deviations (p ~ 1e-15) is not one the mapping drew


def check_arrays(arrays: dict, layers, hw: HardwareConfig) -> None:
    """ConfigError naming the array unless every array of a design (all present) has the shape the
    layers give, is finite, and in the range the hardware can produce: nominal conductances in
    [0, g_max_s], programmed ones up to g_max_s x exp(8 prog_sigma), comparator offsets within
    8 sigma of comparator_offset_v."""
    def check(ok: bool, key: str, message: str) -> None:   # "g_pos1 has shape ...", as a file's arrays are named
        if not ok:
            raise ConfigError(f"{key} {message}")

    g_top = {"nominal": hw.g_max_s, "programmed": hw.g_max_s * math.exp(_SIGMAS * hw.prog_sigma)}
    off_span = _SIGMAS * hw.comparator_offset_sigma_v
    for l, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:])):
        for n in _ARRAYS:
            a, key = arrays[f"{n}{l}"], f"{n}{l}"
            want = (n_out,) if n == "offset_v" else (n_in, n_out)
            check(a.shape == want, key, f"has shape {a.shape}, expected {want} from layers {list(layers)}")
            check(bool(np.all(np.isfinite(a))), key, "holds NaN or inf")
            if n in _CONDUCTANCES:
                top = g_top["nominal" if n.endswith("nominal") else "programmed"] * (1 + 1e-9)
                check(a.min() >= 0 and a.max() <= top, key,
                        f"holds conductances from {a.min():.4g} to {a.max():.4g} S, outside [0, {top:.4g}] "
                        f"that hw.g_max_s = {hw.g_max_s:g} and hw.prog_sigma = {hw.prog_sigma:g} allow")
            elif n == "offset_v":
                dev = float(np.max(np.abs(a - hw.comparator_offset_v))) if a.size else 0.0
                check(dev <= off_span + 1e-12, key,
                        f"holds comparator offsets {dev:.4g} V from hw.comparator_offset_v, beyond "
                        f"{_SIGMAS:g} x hw.comparator_offset_sigma_v = {off_span:.4g} V")


def load_design(path: str | Path) -> Design:
    """Read and check a design folder; errors (CheckpointError) name the file and key that is wrong
    and what to run. Keys of design.yaml that DesignMeta does not know are ignored."""
    path = Path(path)
    npz_path, yaml_path = path / "design.npz", path / "design.yaml"
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such design folder; {_HOW}")
    for p in (npz_path, yaml_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: not found; is {path} a design folder? {_HOW}")
    raw = atomic_io.read_yaml(yaml_path, CheckpointError, _HOW)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else None
        raise CheckpointError(f"{yaml_path}: format is {got!r}, expected {FORMAT!r}; {_HOW}")
    try:
        meta = build(DesignMeta, {k: v for k, v in raw.items() if k in _FIELDS})
        section = raw.get("model")
        require(isinstance(section, dict), "model", f"expected a mapping of v_th, t_in, t_end (got {section!r})")
        model = model_config({**section, "layers": list(meta.layers)})
        meta.check_model(model)
    except ConfigError as exc:
        raise CheckpointError(f"{yaml_path}: {exc}; {_HOW}") from None
    n_layers = len(meta.layers) - 1
    arrays = atomic_io.read_npz(npz_path, CheckpointError, _HOW)
    missing = [f"{n}{l}" for n in _ARRAYS for l in range(n_layers) if f"{n}{l}" not in arrays]
    if missing:
        raise CheckpointError(f"{npz_path}: missing arrays {', '.join(missing[:6])}; {_HOW}")
    try:
        check_arrays(arrays, meta.layers, meta.hw)
    except ConfigError as exc:
        raise CheckpointError(f"{npz_path}: {exc}; {_HOW}") from None
    arrays_sha256 = arrays_digest(arrays)
    if ARRAYS_KEY in raw and raw[ARRAYS_KEY] != arrays_sha256:
        raise CheckpointError(f"{path}: design.npz is not the one design.yaml was written with (a 'ttfs map' "
                              f"into this folder was interrupted, or one file was replaced); map it again")
    per = {n: [arrays[f"{n}{l}"] for l in range(n_layers)] for n in _ARRAYS}
    yaml_text = json.dumps({str(k): v for k, v in raw.items() if k != provenance.KEY}, default=str)
    content = digest(arrays_sha256, yaml_text.encode())
    return Design(
        source_run=meta.source_run, dataset=meta.dataset, layers=meta.layers, t_in_s=meta.t_in_s,
        t_end_s=meta.t_end_s, c_mem_f=meta.c_mem_f, v_th_v=meta.v_th_v, weight_per_siemens=meta.weight_per_siemens,
        full_scale_weight=meta.full_scale_weight or (float("nan"),) * n_layers,
        n_clipped=meta.n_clipped or (0,) * n_layers, hw=meta.hw, model=model, g_pos=per["g_pos"],
        g_neg=per["g_neg"], g_pos_nominal=per["g_pos_nominal"], g_neg_nominal=per["g_neg_nominal"],
        offset_v=per["offset_v"], weights=per["w"], noise_seed=meta.noise_seed, content_sha256=content,
        folder=str(path))
