"""YAML config files into validated frozen dataclasses.

`load_config(path, RunConfig, overrides=["train.epochs=3"])` reads YAML, applies dotted
overrides, and builds the dataclass tree: an unknown or missing key, a wrong type or an
out-of-range value is a ConfigError naming the key path (`train.lr: expected a number, got 'fast'`).
Every float (also inside tuples and optionals) must be finite: NaN and +/-inf, however spelled
(`.inf`, `nan`, `1e400`), are errors, unless the dataclass field opts in to infinities with
`field(default=..., metadata={"allow_inf": True})` (NaN is never a value).

`split_overrides` is the one reading of the command line's `--set`: every item is a dotted key
whose first segment names the section (`hw.bits=4`, `energy.e_comparator_j=1e-14`,
`train.epochs=3`), grouped per section for its loader.

Presets: the shipped configs live in this package (infra/presets/, package data, so an installed
copy has them; `configs/` in a checkout links there). Wherever a config file is read, a name that
is not an existing file is the preset of that name: `load_config("mnist-784-400-10", RunConfig)`,
`load_config("default", HardwareConfig, section="hw")`. The kind of preset is the section the
dataclass is built under ("train" for the top level); `presets()` lists them all.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path

import yaml

from infra import atomic_io
from infra.errors import ConfigError


def require(ok: bool, key: str, message: str) -> None:
    """Raise ConfigError(`key: message`) unless ok."""
    if not ok:
        raise ConfigError(f"{key}: {message}")


def finite(value: float, key: str, allow_inf: bool = False) -> float:
    """`value` unless it is NaN (or +/-inf, unless allow_inf): then ConfigError naming `key`."""
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ConfigError(f"{key}: must be a finite number{' or .inf' if allow_inf else ''} (got {value})")
    return value


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value, tp, key: str, allow_inf: bool = False):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        mismatches, bad_values = [], []
        for alt in typing.get_args(tp):
            if alt is type(None):
                if value is None:
                    return None
                continue
            try:
                return _convert(value, alt, key, allow_inf)
            except ConfigError as exc:
                message = str(exc).split(": ", 1)[-1]
                if message.startswith("expected"):
                    mismatches.append(message)
                else:
                    bad_values.append(exc)
        if bad_values:  # the right type but a bad value: say only that (with the item's own key)
            raise bad_values[0]
        raise ConfigError(f"{key}: {' or '.join(mismatches)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = [a for a in typing.get_args(tp) if a is not Ellipsis][:1]
        return tuple(_convert(v, item, f"{key}[{i}]", allow_inf) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):  # YAML 1.1 reads 1e-3 (and 1e400, nan) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = float(number)
        except OverflowError:  # an integer beyond the float range
            number = math.inf if number > 0 else -math.inf
        return finite(number, key, allow_inf)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def build(cls, data, prefix: str = ""):
    """Build dataclass `cls` from a mapping; keys not in `cls`, and missing keys `cls` has no
    default for, are errors naming them."""
    where = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = set(fields)

    def full(k) -> str:
        return f"{prefix}.{k}" if prefix else str(k)

    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise ConfigError(f"{', '.join(map(full, unknown))}: unknown key; allowed keys"
                          f"{' in ' + prefix if prefix else ''}: {', '.join(sorted(names))}")
    missing = [k for k, f in fields.items() if k not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{', '.join(map(full, missing))}: required but missing")
    kwargs = {k: _convert(v, hints[k], full(k), fields[k].metadata.get("allow_inf", False))
              for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(data: dict, overrides) -> dict:
    """Apply `key.sub=value` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=3")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def _fields(cls) -> dict:
    """Field name -> type of a dataclass ({} for anything else)."""
    return typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}


def _sections_of(sections: dict) -> dict:
    """Every section a `--set` can address, by its full prefix ("" expanded: `train`, `model`, ...)."""
    out = {p: cls for p, cls in sections.items() if p}
    for name, tp in _fields(sections.get("")).items():
        if dataclasses.is_dataclass(tp):
            out[name] = tp
    return out


def prefixes(sections: dict) -> str:
    """The prefixes a command with these `--set` sections takes, for messages: `hw., energy.`."""
    leaves = [k for k, tp in _fields(sections.get("")).items() if not dataclasses.is_dataclass(tp)]
    return ", ".join([f"{p}." for p in _sections_of(sections)] + leaves)


def split_overrides(items, sections: dict) -> dict[str, list[str]]:
    """The command line's `--set PREFIX.KEY=VALUE` items grouped by section, each as `KEY=VALUE`
    relative to its section (what `load_config(path, cls, overrides, section=PREFIX)` takes).

    `sections` maps each prefix a command takes to its dataclass: `{"hw": HardwareConfig, "energy":
    EnergyConfig}`. The prefix "" is a config whose own top-level keys are the prefixes
    (`{"": RunConfig}`: `train.epochs=3`, `model.layers=[784, 16, 10]`, `seed=1`), kept whole. An
    item without `=`, a prefix the command does not take, a key without its prefix and a key of
    another section are each a ConfigError of one line naming the prefix to use.
    """
    groups = {p: [] for p in sections}
    known = _sections_of(sections)
    for item in items or ():
        key, eq, value = item.partition("=")
        key = key.strip()
        head, _, rest = key.partition(".")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected PREFIX.KEY=VALUE, PREFIX one of {prefixes(sections)}")
        if head in sections and head:
            prefix, rel = head, rest
        elif head in _fields(sections.get("")):
            prefix, rel = "", key
        else:
            owners = [p for p, cls in known.items() if head in _fields(cls)]
            if owners:
                raise ConfigError(f"--set {key}: give the key its section's prefix: --set {owners[0]}.{key}={value}")
            raise ConfigError(f"--set {key}: unknown prefix {head!r}; this command takes {prefixes(sections)}")
        name = rest.split(".", 1)[0]
        section = known.get(head)
        if section is not None and name not in _fields(section):
            owners = [p for p, cls in known.items() if p != head and name in _fields(cls)]
            hint = (f"it is a key of the {owners[0]} section: --set {owners[0]}.{rest}={value}" if owners
                    else f"{head}. takes {', '.join(_fields(section))}")
            raise ConfigError(f"--set {key}: {head} has no key {name!r}; {hint}")
        groups[prefix].append(f"{rel}={value}")
    return groups


PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRESET_KINDS = {"train": PRESETS_DIR, "hw": PRESETS_DIR / "hw", "energy": PRESETS_DIR / "energy"}


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    kind: str              # train, hw or energy
    path: Path
    description: str       # the first sentence of the file's first comment


def _preset_files(kind: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted(PRESET_KINDS[kind].glob("*.yaml"))}


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return re.split(r"(?<=\.)\s", line.lstrip("#").strip(), maxsplit=1)[0]
    return ""


def presets(kind: str | None = None) -> list[Preset]:
    """The shipped presets (of one kind, or all), by kind then name."""
    return [Preset(name, k, path, _description(path)) for k in ([kind] if kind else PRESET_KINDS)
            for name, path in _preset_files(k).items()]


def config_path(path: str | Path, kind: str | None = "train") -> Path:
    """`path` if it is a file, else the preset of `kind` named `path` (kind None: files only)."""
    if Path(path).is_file() or kind is None:
        found = Path(path)
    else:
        found = _preset_files(kind).get(str(path))
    if found is None or not found.is_file():
        presets_of_kind = (f", nor a {kind} preset ({kind} presets: {', '.join(_preset_files(kind))}; "
                           "'ttfs presets' describes them)") if kind else ""
        raise ConfigError(f"{path}: config file not found{presets_of_kind}")
    return found


def read_yaml(path: str | Path, kind: str | None = "train") -> dict:
    """The mapping in a config file or preset of `kind` (config_path); {} for an empty file."""
    path = config_path(path, kind)
    data = atomic_io.read_yaml(path, ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def _overridden(message: str, overrides, section: str) -> bool:
    """Whether the key a ConfigError message starts with (`hw.bits: ...`, `model.layers[0]: ...`)
    is one an override set (or lies inside one)."""
    key = message.split(": ", 1)[0]
    for item in overrides or ():
        name = item.split("=", 1)[0].strip()
        full = f"{section}.{name}" if section else name
        if key == full or key.startswith((full + ".", full + "[")):
            return True
    return False


def load_config(path: str | Path | None, cls, overrides=(), section: str = ""):
    """Read `path`, a file or a preset of kind `section` ("train" for "") (None: defaults only),
    apply overrides, build `cls`. An error of a file's config names where its key's value came
    from: `--set KEY: ...` for a key an override set, else `FILE: KEY: ...`."""
    return load_config_and_section(path, cls, None, overrides, section)[0]


def load_config_and_section(path: str | Path | None, cls, key: str | None, overrides=(), section: str = ""):
    """(`cls` built as `load_config` does from the file less its top-level `key`, the value of
    `key` in the file or None): for a file that also carries another stage's section (a training
    config's `hw:`), which the caller validates with that stage's config class."""
    kind = section or "train"
    data = read_yaml(path, kind if kind in PRESET_KINDS else None) if path is not None else {}
    detached = data.pop(key, None) if key is not None else None
    apply_overrides(data, overrides)
    try:
        return build(cls, data, section), detached
    except ConfigError as exc:
        if path is None:
            raise
        if _overridden(str(exc), overrides, section):
            raise ConfigError(f"--set {exc}") from None
        raise ConfigError(f"{path}: {exc}") from None
