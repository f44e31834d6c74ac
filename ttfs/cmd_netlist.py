"""ttfs export-netlist | simulate: SPICE netlists of a design and circuit-level inference in ngspice."""
from __future__ import annotations

import time
from pathlib import Path

from infra import atomic_io
from infra.errors import ConfigError
from ttfs import args as flags


def _layers(spec: str | None, n: int) -> tuple:
    if not spec:
        return 0, n
    try:
        a, b = spec.split(":")
        a = int(a) if a else 0
        b = int(b) if b else n
    except ValueError:
        raise ConfigError(f"--layers {spec!r}: expected a:b, e.g. 0:1 for the first hidden layer") from None
    if not 0 <= a < b <= n:
        raise ConfigError(f"--layers {spec}: must satisfy 0 <= a < b <= {n} (the design has {n} layers)")
    return a, b


def cmd_export(args) -> int:
    from hwmodel.behavioural import input_times_s, layer_times
    atomic_io.prepare_out_file(args.out)
    from netlists.circuit import within_window
    from netlists.runner import load
    from netlists.writer import check_inert, network_netlist
    from training.data import check_fits, load_split, select

    from energy.model import EnergyCircuit
    from energy.validate import with_energy
    from ttfs.cmd_energy import load_energy
    design, circuit = load(args.design, args.t_rise_s, args.wires)
    within_window(args.max_step_s, circuit.t_end_s, "--max-step-s")
    circuit = with_energy(circuit, EnergyCircuit.from_design(design), load_energy(args.energy))
    check_fits(str(args.design / "design.npz"), design.g_pos, design.dataset)
    data = select(load_split(design.dataset, "test", args.data_dir), start=args.sample, limit=1,
                  start_flag="--sample")
    t_input = input_times_s(design, data.images)
    a, b = _layers(args.layers, circuit.n_layers)
    notes = [f"test sample {args.sample} of {design.dataset} (label {int(data.labels[0])}), "
             f"input spike times = encode_pixels(image, t_in = {design.model.t_in}) * time_scale_s"]
    if a > 0:
        # Layer a's rows switch at layer a-1's firing times, taken from the behavioural model.
        t_rows = layer_times(design, t_input)[a - 1][0]
        notes.append(f"layer {a}'s rows are driven at layer {a - 1}'s firing times from the behavioural model")
    else:
        t_rows = t_input[0]
    start = time.perf_counter()
    text = network_netlist(circuit, t_rows, (a, b), title=f"ttfs network {Path(args.design).name}",
                           notes=notes, max_step_s=args.max_step_s)
    check_inert(text, str(args.out))        # the file is run later with `ngspice -b`: nothing but circuit
    atomic_io.write_text(args.out, text)
    n_lines = text.count("\n")
    print(f"wrote {args.out}: {n_lines} lines, layers {a}..{b - 1}, sample {args.sample} "
          f"({time.perf_counter() - start:.1f} s); run it with: ngspice -b {args.out}")
    return 0


def cmd_simulate(args) -> int:
    atomic_io.prepare_out_dir(args.out)
    from netlists.runner import Settings, format_summary, run

    summary = run(args.design, args.limit, args.out, workers=args.workers, dask_address=args.dask,
                  settings=Settings(t_rise_s=args.t_rise_s, timeout_s=args.timeout_s, wires=args.wires),
                  data_dir=args.data_dir, progress=not args.quiet, start=args.start)
    print(format_summary(summary))
    print(f"results: {Path(args.out) / 'results.jsonl'}, summary: {Path(args.out) / 'summary.json'}")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("export-netlist", help="write a standalone ngspice netlist of a design for one input",
                       formatter_class=formatter, parents=[flags.DATA_DIR],
                       description="Write the circuit of a design (all layers, or --layers a:b) for test "
                                   "sample K as an ngspice netlist: PWL row drivers, one resistor per "
                                   "crossbar cell (with wires: see --wires), neuron subcircuits (op-amp output clamped at "
                                   "the energy config's swing), comparators and row drivers, the design's gating, and "
                                   "the energy config's supply terms as supply sources. "
                                   "'ngspice -b FILE' prints each neuron's firing time t_l{layer}_n{neuron} "
                                   "in seconds ('failed' = silent). Circuits: docs/netlists.md.",
                       epilog="example:\n  ttfs export-netlist designs/mnist --sample 0 --out mnist0.cir\n"
                              "  ngspice -b mnist0.cir | grep '^t_l1_'")
    p.add_argument("design", type=Path, help="design folder written by 'ttfs map'")
    p.add_argument("--sample", type=flags.index, default=0, help="index K of the test image")
    p.add_argument("--out", required=True, type=Path, help="netlist file to write (.cir)")
    p.add_argument("--layers", default=None, metavar="A:B", help="only layers A..B-1 (0 = first hidden layer)")
    p.add_argument("--energy", default=None, help="energy config (a YAML file or a preset name; default: the built-in "
                                                  "defaults): the op-amp swing and the supply terms written")
    p.add_argument("--t-rise-s", type=flags.positive, default=None, help="row-driver edge (default 1e-3 * time_scale_s)")
    p.add_argument("--max-step-s", type=flags.positive, default=None,
                   help="ngspice maximum time step (default t_end_s / 1000; the comparators' edges "
                        "are located to about half of it)")
    flags.add_wires(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("simulate", help="circuit-level inference of test images in ngspice",
                       formatter_class=formatter, parents=[flags.DATA_DIR, flags.QUIET],
                       description="Simulate N test images of a design in ngspice (layer by layer, "
                                   "through PySpice's shared-library interface) and compare with the "
                                   "behavioural model. Writes SIM/results.jsonl (one line per image, "
                                   "resumable: rerun to continue) and SIM/summary.json.",
                       epilog="examples:\n  ttfs simulate designs/mnist --limit 20 --workers 2 --out sims/mnist\n"
                              "  ttfs simulate designs/mnist --limit 100 --dask tcp://127.0.0.1:8786 --out sims/mnist")
    p.add_argument("design", type=Path, help="design folder written by 'ttfs map'")
    p.add_argument("--limit", type=flags.count, required=True, help="number of test images")
    p.add_argument("--start", type=flags.index, default=0, help="index of the first test image")
    p.add_argument("--workers", type=flags.count, default=1, help="worker processes, one ngspice each")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="send images to this dask.distributed scheduler (workers with --nthreads 1)")
    p.add_argument("--out", required=True, type=Path, help="simulation folder to write")
    p.add_argument("--t-rise-s", type=flags.positive, default=None, help="row-driver edge (default 1e-3 * time_scale_s)")
    p.add_argument("--timeout-s", type=flags.positive, default=900.0, help="per image and attempt")
    flags.add_wires(p)
    p.set_defaults(func=cmd_simulate)
