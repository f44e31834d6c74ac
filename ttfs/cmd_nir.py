"""ttfs export-nir: write a trained run as a NIR graph (training/nir_export.py, docs/nir.md)."""
from __future__ import annotations

from pathlib import Path

from infra.atomic_io import prepare_out_file
from infra.errors import ConfigError


def cmd_export_nir(args) -> int:
    from training.nir_export import export_nir   # imported here: nir and h5py are not needed for --help

    prepare_out_file(args.out)

    if args.tau_over_window is not None and not args.portable:
        raise ConfigError("--tau-over-window: sets the portable form's time constants; add --portable or drop it")

    graph = export_nir(args.run, args.out, portable=args.portable, tau_over_window=args.tau_over_window,
                       time_scale_s=args.time_scale_s)
    meta = graph.metadata
    form = (f"portable: Linear -> CubaLIF, tau = {meta['portable']['tau_over_window']:g} x t_end"
            if args.portable else "exact: Linear -> I -> IF")
    unit = "model time units" if args.time_scale_s is None else f"seconds ({args.time_scale_s:g} s per model unit)"
    print(f"wrote {args.out}: NIR {meta['nir_version']}, {form}, layers "
          f"{'-'.join(str(n) for n in meta['layers'])}, window t_end = {meta['t_end']:g} in {unit}")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("export-nir", help="write a trained run as a NIR graph (snnTorch, Norse, Lava, chips)",
                       formatter_class=formatter,
                       description="Write the trained network in the Neuromorphic Intermediate Representation "
                                   "(NIR, HDF5). The exact form is Linear -> I -> IF per layer; --portable writes "
                                   "Linear -> CubaLIF with time constants much longer than the window, which "
                                   "more importers read and which matches the model to first order in t / tau. "
                                   "What NIR cannot express (fire at most once, the window t_end, the pixel "
                                   "encoding, the time unit) is in the graph's metadata. Mapping: docs/nir.md.",
                       epilog="examples:\n  ttfs export-nir runs/mnist-784-400-10 --out mnist.nir\n"
                              "  ttfs export-nir runs/mnist-784-400-10 --portable --time-scale-s 1e-3 "
                              "--out mnist-portable.nir")
    p.add_argument("run", type=Path, help="run folder written by 'ttfs train'")
    p.add_argument("--out", required=True, type=Path, help="NIR file to write (.nir)")
    p.add_argument("--portable", action="store_true", help="CubaLIF form instead of the exact I -> IF form")
    p.add_argument("--tau-over-window", type=float, default=None, metavar="F",
                   help="portable form: tau_syn = tau_mem = F * t_end, F = 1e4 when not given; the leak "
                        "changes potentials by a fraction of about 1/F")
    p.add_argument("--time-scale-s", type=float, default=None, metavar="S",
                   help="write times in seconds, one model time unit = S seconds; not given: in model time units")
    p.set_defaults(func=cmd_export_nir)
