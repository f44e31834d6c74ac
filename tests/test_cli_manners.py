"""The command line cannot lose a command, spells --set one way, starts fast and tells its version;
the library leaves the user's matplotlib backend and PySpice logger alone and reports via logging."""
import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hwmodel.design import load_design
from ttfs import cli
from ttfs.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/mnist-784-400-10.yaml"
HEAVY = ("numba", "scipy", "matplotlib", "PySpice", "dask", "nir")
LIBRARY = ("infra", "training", "hwmodel", "netlists", "energy")


def python(code: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, **kw)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- a command line that cannot lose a command ------------------------------------------------------

def _commands() -> dict:
    """Command name -> the module whose function runs it, as the parser registers them."""
    sub = next(a for a in cli.make_parser()._actions if a.dest == "command")
    return {name: p.get_default("func").__module__ for name, p in sub.choices.items()}


def test_every_command_module_registers_commands_and_every_command_is_in_the_help(capsys):
    commands = _commands()
    on_disk = {f"ttfs.{p.stem}" for p in (REPO / "ttfs").glob("cmd_*.py")}
    assert set(commands.values()) == on_disk == {m.__name__ for m in cli.COMMAND_MODULES}
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ")}
    assert set(commands) <= listed


def test_a_command_module_that_fails_to_import_fails_ttfs_loudly():
    # None in sys.modules: importing ttfs.cmd_nir raises ModuleNotFoundError naming ttfs.cmd_nir,
    # the very error the old loader took for "feature not built yet" and skipped.
    proc = python("import sys; sys.modules['ttfs.cmd_nir'] = None\n"
                  "from ttfs.cli import main\nsys.exit(main(['--help']))")
    assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr and "ttfs.cmd_nir" in proc.stderr
    assert "export-nir" not in proc.stdout


def test_help_imports_no_numeric_plotting_or_simulator_library():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ttfs.cli", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "export-nir" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "ttfs.cmd_hw" in imported                     # the log is what it seems
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


def test_version_prints_the_package_version(monkeypatch):
    proc = subprocess.run([sys.executable, "-m", "ttfs.cli", "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == f"ttfs {cli.version()}\n"
    from importlib import metadata

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with open(REPO / "pyproject.toml", "rb") as fh:
        assert cli.version() == tomllib.load(fh)["project"]["version"]


# -- one meaning for --set ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, command, text", [
    (["map", "RUN", "--hw", "configs/hw/ideal.yaml", "--set", "train.epochs=3"], "map",
     "--set train.epochs: unknown prefix 'train'; this command takes hw."),
    (["map", "RUN", "--hw", "configs/hw/ideal.yaml", "--set", "bits=4"], "map",
     "--set bits: give the key its section's prefix: --set hw.bits=4"),
    (["energy-report", "RUN", "--hw", "configs/hw/ideal.yaml", "--set", "hw.e_comparator_j=1e-14"], "energy-report",
     "it is a key of the energy section: --set energy.e_comparator_j=1e-14"),
    (["energy-report", "RUN", "--hw", "configs/hw/ideal.yaml", "--set", "energy.bits=4"], "energy-report",
     "--set energy.bits: energy has no key 'bits'; it is a key of the hw section: --set hw.bits=4"),
    (["energy-validate", "DESIGN", "--set", "hw.bits=4"], "energy-validate",
     "--set hw.bits: unknown prefix 'hw'; this command takes energy."),
    (["train", "--config", CONFIG, "--set", "energy.e_comparator_j=1"], "train",   # hw.: the chip of train --hw
     "--set energy.e_comparator_j: unknown prefix 'energy'; this command takes hw., data., model., loss., train., reg., seed"),
    (["sweep", "--config", CONFIG, "--reg", "m-ssr", "--strengths", "0", "--set", "epochs=2"], "sweep",
     "--set epochs: give the key its section's prefix: --set train.epochs=2"),
    (["hw-eval", "DESIGN", "--set", "hw.bits"], "hw-eval", "--set 'hw.bits': expected PREFIX.KEY=VALUE"),
])
def test_set_items_of_an_unknown_prefix_or_the_wrong_section_are_one_line_errors(
        argv, command, text, run_dir, tmp_path, capsys):
    design = tmp_path / "design"
    assert main(["map", str(run_dir), "--hw", "configs/hw/ideal.yaml", "--out", str(design)]) == 0
    capsys.readouterr()
    argv = [{"RUN": str(run_dir), "DESIGN": str(design)}.get(a, a) for a in argv]
    out = tmp_path / "out"
    if command not in ("hw-eval", "energy-validate"):
        argv += ["--out", str(out)]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"ttfs {command}: error: ") and text in line, line
    assert not out.exists()


def test_the_same_hw_set_works_in_map_hw_eval_hw_sweep_and_energy_report(run_dir, tmp_path, capsys):
    ideal, four = tmp_path / "ideal", tmp_path / "four"
    assert main(["map", str(run_dir), "--hw", "configs/hw/ideal.yaml", "--out", str(ideal)]) == 0
    assert main(["map", str(run_dir), "--hw", "configs/hw/ideal.yaml", "--out", str(four), "--set", "hw.bits=4"]) == 0
    assert load_design(ideal).hw.bits is None and load_design(four).hw.bits == 4
    capsys.readouterr()

    def hw_eval(*extra):
        assert main(["hw-eval", *extra, "--limit", "30", "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        return {k: v for k, v in r.items() if k not in ("design", "seconds")}

    mapped, remapped = hw_eval(str(four)), hw_eval(str(ideal), "--set", "hw.bits=4")
    assert remapped == mapped and remapped != hw_eval(str(ideal))
    assert main(["hw-sweep", str(ideal), "--set", "hw.bits=4", "--param", "variation", "--values", "0",
                 "--limit", "30", "--out", str(tmp_path / "sweep"), "--quiet"]) == 0
    row = (tmp_path / "sweep" / "sweep-variation.csv").read_text().splitlines()[1].split(",")
    assert float(row[2]) == mapped["accuracy"]
    report = tmp_path / "report"
    assert main(["energy-report", str(run_dir), "--hw", "configs/hw/ideal.yaml", "--set", "hw.bits=4",
                 "--set", "energy.e_comparator_j=1e-14", "--limit", "30", "--out", str(report), "--quiet"]) == 0
    data = json.loads((report / "report.json").read_text())
    assert data["hw_config"]["bits"] == 4 and data["runs"][0]["accuracy"] == mapped["accuracy"]


# -- library manners -----------------------------------------------------------------------------

def test_plotting_modules_leave_the_matplotlib_backend_alone(tmp_path):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
calls = []
matplotlib.use = lambda *a, **k: calls.append(a)
import energy.plots, training.plots, hwmodel.sweep
from pathlib import Path
out = Path({str(tmp_path)!r})
rows = [dict(param="bits", value=v, accuracy=0.9, accuracy_std=0.01, model_accuracy=0.95, n=10, trials=1)
        for v in (2, 4, None)]
hwmodel.sweep.write_sweep(rows, out, "bits")
run = dict(name="a", breakdown_j={{c: 1e-9 for c in energy.plots.COMPONENTS}}, savings_pct=0.0)
energy.plots.plot_breakdown([run, dict(run, name="b", savings_pct=5.0)], out / "breakdown.png")
training.plots.plot_tradeoff([dict(kind="none", strength="0", accuracy="0.9", spikes_per_neuron_mean="0.5"),
                              dict(kind="m-ssr", strength="1e-4", accuracy="0.88", spikes_per_neuron_mean="0.3")],
                             out / "tradeoff.png")
print(calls, matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "svg", "False"]
    for png in ("sweep-bits.png", "breakdown.png", "tradeoff.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ngspice_leaves_the_pyspice_logger_alone():
    code = """
import logging
import numpy as np
logging.getLogger("PySpice").setLevel(logging.INFO)
seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.name)
logging.getLogger("PySpice").addHandler(Keep())
from netlists import writer
from netlists.circuit import make_circuit
from netlists.ngspice import Session
netlist = writer.layer_netlist(make_circuit([np.full((3, 2), 1e-6)], [np.zeros((3, 2))], 1e-12, 0.5),
                               0, np.array([0.0, 1e-6, 2e-6]))
for isolated in (False, True):
    ses = Session(isolated=isolated)
    assert "time" in ses.run(netlist).vectors
    ses.close()
print(logging.getLogger("PySpice").level == logging.INFO, [n for n in seen if "NgSpiceShared" in n])
"""
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "[]"]


def test_library_code_reports_through_logging_not_print():
    """No print() call and no `log` callback parameter in the library packages (the command line
    and scripts decide where messages go)."""
    found = []
    for package in LIBRARY:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} print")
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names = [a.arg for a in node.args.args + node.args.kwonlyargs]
                    if "log" in names:
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}(log=...)")
    assert found == []


def test_progress_messages_go_to_stdout_and_quiet_silences_them(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = ["--set", "model.layers=[784, 8, 10]", "--set", "data.train_limit=100", "--set", "data.test_limit=50",
            "--set", "train.batch_size=50", "--set", "train.epochs=1"]
    base = ["train", "--config", CONFIG, "--out", str(run), *tiny]
    assert main(base) == 0
    assert "epoch 1/1: loss" in capsys.readouterr().out
    assert main([*base, "--resume", "--quiet"]) == 0
    assert "already complete" not in capsys.readouterr().out
    assert main([*base, "--resume"]) == 0
    assert f"{run} already complete (1 epochs)" in capsys.readouterr().out
    import logging
    assert logging.getLogger("training").level == logging.NOTSET      # main restores what it found
    assert cli._CONSOLE not in logging.getLogger("training").handlers
