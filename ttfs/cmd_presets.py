"""ttfs presets: the configs shipped inside the package, usable by name wherever a config file is
accepted (`--config mnist-784-400-10`, `--hw default`, `--energy default`; infra.config)."""
from __future__ import annotations

KINDS = ("train", "hw", "energy")


def cmd_presets(args) -> int:
    from infra.config import PRESETS_DIR, presets

    rows = presets(args.kind)
    name_w = max(len("name"), *(len(p.name) for p in rows))
    print(f"{'name':<{name_w}}  {'kind':<6}  description")
    for p in rows:
        print(f"{p.name:<{name_w}}  {p.kind:<6}  {p.description}")
    print(f"\nthe files: {PRESETS_DIR} (train), its hw/ and energy/ folders; copy one to change it, or use --set")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("presets", help="list the configs shipped with the package (usable by name)",
                       formatter_class=formatter,
                       description="List the shipped configs: training configs (train: --config NAME of "
                                   "'ttfs train' and 'ttfs sweep'), hardware configs (hw: --hw NAME) and "
                                   "energy configs (energy: --energy NAME). A name that is not an existing "
                                   "file is looked up here.",
                       epilog="example:\n  ttfs presets\n  ttfs presets --kind hw\n"
                              "  ttfs train --config mnist-784-400-10 --out runs/mnist\n"
                              "  ttfs map runs/mnist --hw default --out designs/mnist")
    p.add_argument("--kind", choices=KINDS, default=None, help="list only this kind (default: all)")
    p.set_defaults(func=cmd_presets)
