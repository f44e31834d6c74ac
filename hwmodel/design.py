"""The design folder `ttfs map` writes: DESIGN/design.npz and DESIGN/design.yaml.

The contract is docs/design-format.md. Besides the named keys, design.npz holds the nominal
(quantised, before variation) conductances `g_pos_nominal{l}`/`g_neg_nominal{l}`, each neuron's
comparator offset `offset_v{l}` of the stored chip, and the source model's weights `w{l}`
(so Monte-Carlo trials and sweeps can re-draw or re-map without the run folder).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwmodel.chip import Chip
from hwmodel.config import HardwareConfig
from infra import atomic_io
from training.config import ModelConfig
from infra.errors import CheckpointError, ConfigError

FORMAT = "ttfs-design/1"
_HOW = "make one with 'ttfs map RUN --hw configs/hw/default.yaml --out DESIGN'"


@dataclass(frozen=True)
class Design:
    """A trained network mapped onto a crossbar; every physical value in SI units."""

    source_run: str
    dataset: str
    layers: tuple
    neuron: str
    scheme: str
    time_scale_s: float
    t_in_s: float
    t_end_s: float
    v_read_v: float
    c_mem_f: tuple              # per layer
    v_th_v: tuple               # per layer (before comparator offset)
    g_min_s: float
    g_max_s: float
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

    # The non-idealities, named as in design.yaml.
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
        """design.yaml's content."""
        hw = self.hw
        return {
            "format": FORMAT,
            "source_run": self.source_run,
            "dataset": self.dataset,
            "layers": list(self.layers),
            "neuron": self.neuron,
            "scheme": self.scheme,
            "time_scale_s": self.time_scale_s,
            "t_in_s": self.t_in_s,
            "t_end_s": self.t_end_s,
            "v_read_v": self.v_read_v,
            "c_mem_f": [float(x) for x in self.c_mem_f],
            "v_th_v": [float(x) for x in self.v_th_v],
            "g_min_s": self.g_min_s,
            "g_max_s": self.g_max_s,
            "weight_per_siemens": [float(x) for x in self.weight_per_siemens],
            "full_scale_weight": [float(x) for x in self.full_scale_weight],
            "n_clipped": [int(x) for x in self.n_clipped],
            "bits": hw.bits,
            "prog_sigma": hw.prog_sigma,
            "read_noise_rel": hw.read_noise_rel,
            "stuck_on_fraction": hw.stuck_on_fraction,
            "stuck_off_fraction": hw.stuck_off_fraction,
            "comparator_offset_v": hw.comparator_offset_v,
            "comparator_offset_sigma_v": hw.comparator_offset_sigma_v,
            "comparator_delay_s": hw.comparator_delay_s,
            "opamp_gain": hw.opamp_gain,
            "r_wire_row_ohm": hw.r_wire_row_ohm,
            "r_wire_col_ohm": hw.r_wire_col_ohm,
            "noise_seed": int(self.noise_seed),
            "model": {"v_th": self.model.v_th, "t_in": self.model.t_in, "t_end": self.model.t_end},
            "units": "SI (s, V, F, S, ohm); model weights and model times are dimensionless",
            "hw": hw.to_dict(),
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
    atomic_io.write_npz(out / "design.npz", **arrays)
    atomic_io.write_yaml(out / "design.yaml", design.meta())


def load_design(path: str | Path) -> Design:
    """Read and check a design folder; errors (CheckpointError) say what is wrong and what to run."""
    path = Path(path)
    npz_path, yaml_path = path / "design.npz", path / "design.yaml"
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such design folder; {_HOW}")
    for p in (npz_path, yaml_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: not found; is {path} a design folder? {_HOW}")
    meta = atomic_io.read_yaml(yaml_path, CheckpointError, _HOW)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{yaml_path}: format is {got!r}, expected {FORMAT!r}; {_HOW}")
    try:
        hw = HardwareConfig.from_dict(meta["hw"])
        model = ModelConfig(layers=tuple(meta["layers"]), v_th=float(meta["model"]["v_th"]),
                            t_in=float(meta["model"]["t_in"]), t_end=float(meta["model"]["t_end"]))
        n_layers = len(meta["layers"]) - 1
        arrays = atomic_io.read_npz(npz_path, CheckpointError, _HOW)
        names = ("g_pos", "g_neg", "g_pos_nominal", "g_neg_nominal", "offset_v", "w")
        missing = [f"{n}{l}" for n in names for l in range(n_layers) if f"{n}{l}" not in arrays]
        if missing:
            raise CheckpointError(f"{npz_path}: missing arrays {', '.join(missing[:6])}; {_HOW}")
        per = {n: [arrays[f"{n}{l}"] for l in range(n_layers)] for n in names}
        for l, (n_in, n_out) in enumerate(zip(meta["layers"][:-1], meta["layers"][1:])):
            for n in names:
                want = (n_out,) if n == "offset_v" else (n_in, n_out)
                if per[n][l].shape != want:
                    raise CheckpointError(f"{npz_path}: {n}{l} has shape {per[n][l].shape}, expected {want} "
                                          f"from layers {meta['layers']}; {_HOW}")
                if not np.all(np.isfinite(per[n][l])):
                    raise CheckpointError(f"{npz_path}: {n}{l} holds NaN or inf; {_HOW}")
        design = Design(
            source_run=str(meta.get("source_run", "")), dataset=str(meta["dataset"]),
            layers=tuple(meta["layers"]), neuron=meta["neuron"], scheme=meta["scheme"],
            time_scale_s=float(meta["time_scale_s"]), t_in_s=float(meta["t_in_s"]),
            t_end_s=float(meta["t_end_s"]), v_read_v=float(meta["v_read_v"]),
            c_mem_f=tuple(float(x) for x in meta["c_mem_f"]), v_th_v=tuple(float(x) for x in meta["v_th_v"]),
            g_min_s=float(meta["g_min_s"]), g_max_s=float(meta["g_max_s"]),
            weight_per_siemens=tuple(float(x) for x in meta["weight_per_siemens"]),
            full_scale_weight=tuple(float(x) for x in meta.get("full_scale_weight", [np.nan] * n_layers)),
            n_clipped=tuple(int(x) for x in meta.get("n_clipped", [0] * n_layers)),
            hw=hw, model=model, g_pos=per["g_pos"], g_neg=per["g_neg"],
            g_pos_nominal=per["g_pos_nominal"], g_neg_nominal=per["g_neg_nominal"],
            offset_v=per["offset_v"], weights=per["w"], noise_seed=int(meta.get("noise_seed", 0)))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, OSError, ConfigError) as exc:
        raise CheckpointError(f"{path}: incomplete or inconsistent design ({type(exc).__name__}: {exc}); "
                              f"{_HOW}") from None
    for key in ("c_mem_f", "v_th_v", "weight_per_siemens"):
        if len(getattr(design, key)) != n_layers:
            raise CheckpointError(f"{yaml_path}: {key} has {len(getattr(design, key))} values for "
                                  f"{n_layers} layers; {_HOW}")
    return design
