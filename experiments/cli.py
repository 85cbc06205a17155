"""The ``eqprop`` command line: it parses and dispatches; each command's work lives in its own module.

Commands: info, solve, train, evaluate, report, netlist, physics, noise, tolerance, amplifiers, transistors, dies, parasitics, gradcheck, sweep, loihi, onchip, cosim, nonideal,
compare, demo (``eqprop COMMAND --help`` for each). User mistakes (bad paths, bad configs, bad inputs) end in one
line naming the problem and exit code 2, not a traceback from inside a library.
"""
from __future__ import annotations

import argparse
import ctypes.util
import importlib.metadata as md
import os
import platform
import re
import sys
from pathlib import Path

import eqprop.circuits  # noqa: F401  (first: it sets OpenBLAS's idle-thread spin before numpy loads it, threads.py)
import numpy as np

from eqprop.circuits.errors import ConvergenceError

USER_ERRORS = (ValueError, FileNotFoundError, KeyError, OSError, OverflowError)  # Overflow: a Loihi state width


def _user_errors():
    """Errors that end in one line: user mistakes, and a simulator that is missing or fails."""
    from eqprop.neuromorphic import LavaError  # light: Lava itself only loads in a session's own process

    try:
        from eqprop.netlists import SpiceError
    except ImportError:  # PySpice missing: nothing of netlists can be raised then
        return USER_ERRORS + (LavaError,)
    return USER_ERRORS + (SpiceError, LavaError)


def _simulator_errors():
    """The errors of a simulator that fails during a run (ngspice, Lava), as opposed to a user's mistake."""
    return tuple(e for e in _user_errors() if e not in USER_ERRORS)


def _version(pkg):
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def ngspice_status() -> tuple:
    """(loads: bool, where it looked / what it found)."""
    import ctypes

    candidates = [ctypes.util.find_library("ngspice"), "libngspice.so.0", "libngspice.so", "libngspice.dylib"]
    tried = []
    for cand in [c for c in candidates if c]:
        try:
            ctypes.CDLL(cand)
            return True, cand
        except OSError as e:
            tried.append(f"{cand} ({e})")
    return False, "; ".join(tried) or "ctypes.util.find_library('ngspice') found nothing"


def cmd_info(args) -> int:
    from eqprop import backends
    from eqprop.learning.data import DATASETS

    ok, where = ngspice_status()
    rows = [("eqprop-hw", _version("eqprop-hw")), ("python", platform.python_version()),
            ("numpy", np.__version__), ("scipy", _version("scipy")), ("networkx", _version("networkx")),
            ("PySpice", _version("PySpice")), ("lava-nc", _version("lava-nc")),
            ("libngspice", f"loads: {where}" if ok else f"NOT loadable; looked for {where}. "
                                                        "Install: apt-get install -y ngspice libngspice0-dev"),
            ("cores", str(os.cpu_count()))]
    for k, v in rows:
        print(f"{k:<10} {v}")
    print("backends:")
    for spec in backends.REGISTRY.values():
        print(f"  {spec.name:<9} {spec.summary}" + (f" (needs {', '.join(spec.needs)})" if spec.needs else ""))
    print("datasets:")
    for spec in DATASETS.values():
        size = (f"{spec.n_features} features, {spec.n_classes} classes" if spec.n_classes else
                "features and classes from the file")
        print(f"  {spec.name:<14} {size}; {spec.source}")
    return 0


def cmd_solve(args) -> int:
    from .demo import show_example

    show_example()
    return 0


TRAIN_FIELDS = ("dataset", "data", "backend", "hidden", "epochs", "batch_size", "lr", "lr_decay", "warmup", "shift", "dropout", "weight_decay", "wire", "momentum", "beta",
                "nudging", "target_amplitude", "input_scale", "diode", "diode_is", "rails", "gain", "device", "seed",
                "n_train", "n_test", "validation", "pixel_max", "workers", "fixed_point", "threshold", "spikes", "time_steps", "cluster",
                "checkpoint_every", "deadline", "hidden_pairs", "noise_capacitance", "noise_window", "amplifier",
                "converters", "neurons")


def _given(args) -> dict:
    """The TrainConfig fields set on the command line, as TrainConfig holds them."""
    given = {}
    for key in TRAIN_FIELDS:
        val = getattr(args, key, None)
        if val is None or (val is False and key != "hidden_pairs"):
            continue
        if key == "hidden_pairs":
            val = val == "on"
        elif key == "gain":
            val = val[0] if len(val) == 1 else list(val)
        elif key == "rails":
            val = tuple(val)
        elif key in ("hidden", "lr"):
            val = list(val)
        given[key] = val
    return given


def _config_from_args(args):
    from eqprop.learning.trainer import TrainConfig

    cfg = TrainConfig()
    for key, val in _given(args).items():
        setattr(cfg, key, val)
    return cfg


def _nonempty(flag, value) -> None:
    if value is not None and not str(value).strip():
        raise ValueError(f"{flag} is empty (an unset shell variable?); give a run directory")


def cmd_train(args) -> int:
    from eqprop.learning.rundir import load_config, refuse_if_in_use, relocate_data
    from eqprop.learning.runs import train

    _nonempty("--resume", args.resume)
    _nonempty("--out", args.out)
    recipe = None
    if args.resume:
        if args.config:
            raise ValueError("--resume continues a run with its own config.json; drop --config")
        if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
            raise ValueError(f"--resume {args.resume} trains that run in place; --out {args.out} names another "
                             "directory: drop --out (or copy the run there first and resume the copy)")
        refuse_if_in_use(args.resume)  # a run still starting holds its lock before its config.json exists
        cfg = load_config(args.resume)
        given = _given(args)
        data = given.pop("data", None)
        if data is not None and os.path.abspath(data) != cfg.data:
            relocate_data(args.resume, cfg, data)  # a moved or copied data file, checked by its sha256
        from eqprop.learning.rundir import NOT_RESULT_FIELDS  # how long and where, not what: a resume may change them

        fixed = [k for k, v in given.items() if k not in NOT_RESULT_FIELDS and getattr(cfg, k) != v]
        if fixed:
            raise ValueError(f"--resume continues a run as it was started; it cannot change "
                             f"{', '.join('--' + k.replace('_', '-') for k in fixed)} (only --epochs, to train "
                             "further, and --workers/--cluster/--checkpoint-every/--deadline); start a new --out instead")
        for k, v in given.items():
            setattr(cfg, k, v)
        out = args.resume
    elif args.config:
        from .recipes import load_recipe

        recipe = load_recipe(args.config)
        cfg = recipe.config(**_given(args))
        out = args.out or recipe.out or f"runs/{recipe.name}"
    else:
        cfg = _config_from_args(args).validate()
        out = args.out or f"runs/{cfg.dataset}-{cfg.backend}-seed{cfg.seed}"
    try:
        last = train(cfg, out, resume=bool(args.resume), progress=False if args.no_progress else None,
                     recipe=recipe.path if recipe else None)
    except KeyboardInterrupt:
        ckpt = Path(out) / "checkpoint.npz"
        where = f"its last checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint was written yet"
        print(f"\neqprop train: interrupted; {where}. Continue with: eqprop train --resume {out}", file=sys.stderr)
        return 130
    except _simulator_errors() as e:  # a simulator failed mid-run: say what is kept
        ckpt = Path(out) / "checkpoint.npz"
        where = f"the run's last checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint was written yet"
        print(f"eqprop train: error: {e}; {where}", file=sys.stderr)
        return 2
    except ConvergenceError as e:  # the circuit found no equilibrium mid-run: the settings took it there
        print(f"eqprop train: error: the network found no equilibrium during training ({e}); a --beta, --lr or "
              "--input-scale too large can leave it without one: start a new --out with smaller values",
              file=sys.stderr)
        return 2
    if last.get("test_accuracy") is not None:
        print(f"test accuracy {last['test_accuracy']:.4f} (error {100 * (1 - last['test_accuracy']):.2f}%); "
              f"run directory {out}")
    return 0


def cmd_evaluate(args) -> int:
    from eqprop.learning.runs import evaluate_run

    # --nodes reads the same settles as the accuracy (one pass over the split); a digital model's run is refused
    # before anything is printed
    r = evaluate_run(args.run, args.split, data=args.data, nodes=args.nodes)
    print(f"{args.split} accuracy {r['accuracy']:.4f}  loss {r['loss']:.4e}")
    if args.nodes:
        print(f"\nnode voltages on the {args.split} split (percentiles over every node and sample):")
        for row in r["nodes"]:
            lo, mid, hi = (f"{1e3 * v:+.2f}" for v in row["percentiles_v"])
            line = f"  {row['layer']} ({row['nodes']} nodes): 1% / 50% / 99% at {lo} / {mid} / {hi} mV"
            if "rails_v" in row:
                a, b = (f"{1e3 * v:+g}" for v in row["rails_v"])
                line += (f"; on the {a} mV rail {row['low']:.1%}, on the {b} mV rail {row['high']:.1%}, "
                         f"between {row['between']:.1%}")
            else:
                line += "; linear (no clamp)"
            print(line)
    return 0


def cmd_demo(args) -> int:
    from .demo import demo

    demo(args.out, epochs=args.epochs, with_compare=not args.no_compare, with_hardware=not args.no_hardware)
    return 0


def cmd_netlist(args) -> int:
    from .export import export_netlist

    export_netlist(args.run, args.out, args.split, args.sample, args.count, args.beta, args.nudge, force=args.force,
                   wire=args.wire)
    return 0


def cmd_physics(args) -> int:
    from .physics import physics_rows

    physics_rows(args.run or [], args.sizes or [], args.capacitance, args.samples, wire=args.wire,
                 wire_capacitance=args.wire_capacitance)
    return 0


def cmd_noise(args) -> int:
    from .noise import noise_rows

    noise_rows(args.sizes or (), args.gain, args.diode, args.capacitance, args.window, args.temperature, args.spans,
               args.steps_per_tau, args.seed)
    return 0


def cmd_tolerance(args) -> int:
    from .tolerance import run_tolerance

    run_tolerance(args.out, args.capacitance, args.beta, args.draws, args.epochs, args.seed, args.window)
    print(f"table, plot and JSON in {args.out}")
    return 0


def cmd_amplifiers(args) -> int:
    from .amplifiers import run_amplifiers

    run_amplifiers(args.out, args.gbw, args.capacitance, args.base, args.amplifier, args.epochs, args.seed, args.hidden)
    print(f"tables, plot and JSON in {args.out}")
    return 0


def cmd_transistors(args) -> int:
    from .transistors import run_transistors

    run_transistors(args.out, args.parts, args.design, args.clamp, args.run, args.hidden, args.epochs, args.seed,
                    args.samples, args.data, args.config)
    print(f"tables, part models and JSON in {args.out}")
    return 0


def cmd_dies(args) -> int:
    from .dies import run_dies

    run_dies(args.run, args.out, args.dies, args.conductance, args.amplifier_offset, args.amplifier_gain, args.spice,
             args.data, cluster=args.cluster, diode_is=args.diode_is_spread, diode_n=args.diode_n_spread,
             dead_nodes=args.dead_nodes)
    print(f"table and JSON in {args.out}")
    return 0


def cmd_parasitics(args) -> int:
    from .parasitics import run_parasitics

    run_parasitics(args.run, args.out, args.wire, args.images, args.spice, args.data)
    print(f"table and JSON in {args.out}")
    return 0


def cmd_gradcheck(args) -> int:
    from .gradcheck import run_gradcheck

    settings = []
    for item in args.spice:
        try:
            settings.append(tuple(float(v) for v in item.split(":")))
        except ValueError:
            settings.append(())
        if len(settings[-1]) != 2 or not all(v > 0 for v in settings[-1]):
            raise ValueError(f"--spice {item!r}: give RELTOL:SETTLE_TOL pairs of positive numbers, e.g. 1e-6:1e-6")
    print("EqProp estimate vs exact gradient (implicit differentiation), 32-16-10 Shockley network, batch 32")
    run_gradcheck(args.out, with_spice=not args.no_spice, spice_settings=settings)
    print(f"table, plot and JSON in {args.out}")
    return 0


def cmd_sweep(args) -> int:
    from .sweep import run_sweep

    rows = run_sweep(args.file, out=args.out, cluster=args.cluster)
    failed = [r for r in rows if r["status"] == "failed"]
    out = args.out or "the [sweep] out directory"
    print(f"{len(rows) - len(failed)} of {len(rows)} points done; summary.md, summary.csv and summary.json in {out}")
    return 1 if failed else 0


def cmd_tune(args) -> int:
    from .tune import run_tune

    best = run_tune(args.file, out=args.out, trials=args.trials, jobs=args.jobs, cluster=args.cluster, data=args.data)
    return 0 if best else 1


def cmd_loihi(args) -> int:
    from .loihi import loihi_report

    loihi_report(args.run, thresholds=args.threshold, binary=args.spikes == "binary", steps=args.time_steps,
                 alpha=args.alpha, n_test=args.n_test, lava=args.lava, out=args.out, leak=args.leak)
    return 0


def cmd_onchip(args) -> int:
    from .onchip import onchip_report

    onchip_report(hidden=args.hidden, samples=args.samples, beta=args.beta, nudgings=args.nudging, steps=args.step,
                  seed=args.seed, timeout=args.timeout, int_steps=args.int_step, repeats=args.repeats,
                  neurons=args.neurons)
    return 0


def cmd_cosim(args) -> int:
    from .cosim import cosim_report

    cosim_report(run=args.run, hidden=args.hidden, samples=args.samples, beta=args.beta, bits=args.bits,
                 ratios=args.ratios, seed=args.seed, out=args.out, converters=args.converters,
                 noise_capacitance=args.noise_capacitance, latencies=args.latencies, noise=args.noise)
    return 0


def cmd_nonideal(args) -> int:
    from .nonideal import nonideal_rows

    nonideal_rows(args.dataset, args.data, args.hidden, args.epochs, args.seed, args.devices)
    return 0


def cmd_report(args) -> int:
    from .report import report

    report(args.run, out=args.out)
    return 0


def cmd_compare(args) -> int:
    from .compare import compare

    report = compare(args.out, dataset=args.dataset, data=args.data, hidden=args.hidden, epochs=args.epochs,
                     n_train=args.n_train, n_test=args.n_test, seed=args.seed, backends=args.backends,
                     workers=args.workers, lr=args.lr, batch_size=args.batch_size, log=print)
    print((Path(args.out) / "report.md").read_text())
    missing = [k for k, r in report["backends"].items() if not r.get("available")]
    print(f"report: {Path(args.out) / 'report.md'}" + (f" (not available: {', '.join(missing)})" if missing else ""))
    return 0


# --- argument types: a bad value is a one-line argparse error naming the flag ------------------------------
def _number(kind, low, inclusive=True, what=None):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not np.isfinite(v):
            raise argparse.ArgumentTypeError(what or f"must be a finite number, got {text}")
        if v < low if inclusive else v <= low:
            raise argparse.ArgumentTypeError(what or f"must be {'>=' if inclusive else '>'} {low:g}, got {text}")
        return v
    return parse


count = _number(int, 1)
index = _number(int, 0)
positive = _number(float, 0.0, inclusive=False)
nonnegative = _number(float, 0.0)
def diode_choice(text):
    """A registered diode model's name, or a characterised clamp's .json (checked when the config is validated)."""
    from eqprop.circuits.devices import diode_names

    if text in diode_names() or text.strip().endswith(".json"):
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(diode_names())}, or a "
                                     "characterised clamp's .json)")


NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")  # -1, -.5, -1e-12: values, not flags


class _Formatter(argparse.HelpFormatter):
    """Says a flag's default once: not where the help already says it, and not for flags without one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS))
                or action.option_strings == [] and action.nargs in ("*", "+")):
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **k):
        k.setdefault("formatter_class", _Formatter)
        super().__init__(*a, **k)
        self._negative_number_matcher = NEGATIVE_NUMBER


def _experiment_flags(p, datasets, HELP, hidden, epochs) -> None:
    """What every experiment that trains takes: the data, the network size, the epochs, the seed."""
    p.add_argument("--dataset", choices=datasets, default="digits", help=HELP["dataset"])
    p.add_argument("--data", help=HELP["data"])
    p.add_argument("--hidden", type=count, nargs="+", default=hidden, help=HELP["hidden"])
    p.add_argument("--epochs", type=count, default=epochs, help=HELP["epochs"])
    p.add_argument("--seed", type=index, default=0, help=HELP["seed"])


def build_parser() -> argparse.ArgumentParser:
    from eqprop import backends
    from eqprop.learning.data import DATASETS
    from eqprop.learning.eqprop import NUDGINGS
    from eqprop.learning.programming import PRESETS
    from eqprop.learning.trainer import HELP

    from eqprop.circuits.devices import diode_names

    datasets, names = tuple(DATASETS), backends.names()
    p = _Parser(prog="eqprop", description="Train physical networks with Equilibrium Propagation.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("info", help="versions, whether libngspice loads, backends and datasets").set_defaults(func=cmd_info)
    sub.add_parser("solve", help="the example network's free and nudged equilibria").set_defaults(func=cmd_solve)
    t = sub.add_parser("train", help="train a network with EqProp into a run directory",
                       description="Flags left out take their defaults, some of which are the backend's own.")
    t.add_argument("--config", metavar="RECIPE.toml", help="a recipe: the run's fields in a TOML file (recipes/ holds "
                                                           "the README's); flags given beside it override it")
    t.add_argument("--backend", choices=names, help=HELP["backend"] + " (default native)")
    t.add_argument("--dataset", choices=datasets, help=HELP["dataset"] + " (default digits)")
    t.add_argument("--data", help=HELP["data"])
    t.add_argument("--hidden", type=count, nargs="+", help=HELP["hidden"] + " (default 100)")
    t.add_argument("--epochs", type=count, help=HELP["epochs"] + " (default 10; with --resume: train a run further)")
    t.add_argument("--batch-size", dest="batch_size", type=count, help=HELP["batch_size"])
    t.add_argument("--lr", type=nonnegative, nargs="+", help=HELP["lr"])
    t.add_argument("--lr-decay", dest="lr_decay", type=positive, help=HELP["lr_decay"])
    t.add_argument("--warmup", type=nonnegative, help=HELP["warmup"])
    t.add_argument("--shift", type=index, help=HELP["shift"])
    t.add_argument("--dropout", type=nonnegative, help=HELP["dropout"])
    t.add_argument("--weight-decay", dest="weight_decay", type=nonnegative, help=HELP["weight_decay"])
    t.add_argument("--wire", type=positive, metavar="OHMS", help=HELP["wire"])
    t.add_argument("--momentum", type=nonnegative, help=HELP["momentum"])
    t.add_argument("--beta", type=positive, help=HELP["beta"])
    t.add_argument("--nudging", choices=NUDGINGS, help=HELP["nudging"])
    t.add_argument("--target-amplitude", dest="target_amplitude", type=positive, help=HELP["target_amplitude"] +
                   " (default 0.05)")
    t.add_argument("--input-scale", dest="input_scale", type=positive, help=HELP["input_scale"] + " (default 1)")
    t.add_argument("--diode", type=diode_choice, metavar="{" + ",".join(diode_names()) + "} or FILE.json",
                   help=HELP["diode"] + " (default ideal)")
    t.add_argument("--diode-is", dest="diode_is", type=positive, help=HELP["diode_is"])
    t.add_argument("--rails", type=float, nargs=2, help=HELP["rails"] + " (default -0.05 0.05)")
    t.add_argument("--gain", type=positive, nargs="+", help=HELP["gain"])
    t.add_argument("--hidden-pairs", dest="hidden_pairs", choices=("on", "off"), help=HELP["hidden_pairs"])
    t.add_argument("--device", choices=PRESETS, help=HELP["device"] + " (default ideal)")
    t.add_argument("--seed", type=index, help=HELP["seed"] + " (default 0)")
    t.add_argument("--workers", type=count, help=HELP["workers"])
    t.add_argument("--cluster", help=HELP["cluster"])
    t.add_argument("--deadline", type=positive, metavar="SECONDS", help=HELP["deadline"])
    t.add_argument("--fixed-point", dest="fixed_point", action="store_true", default=None, help=HELP["fixed_point"])
    t.add_argument("--threshold", type=nonnegative, help=HELP["threshold"])
    t.add_argument("--spikes", choices=("graded", "binary"), help=HELP["spikes"] + " (default graded)")
    t.add_argument("--time-steps", dest="time_steps", type=count, help=HELP["time_steps"])
    t.add_argument("--n-train", dest="n_train", type=count, help=HELP["n_train"])
    t.add_argument("--n-test", dest="n_test", type=count, help=HELP["n_test"])
    t.add_argument("--validation", type=count, metavar="N", help=HELP["validation"])
    t.add_argument("--pixel-max", dest="pixel_max", type=positive, help=HELP["pixel_max"])
    t.add_argument("--noise-capacitance", dest="noise_capacitance", type=positive, metavar="FARADS",
                   help=HELP["noise_capacitance"])
    t.add_argument("--amplifier", metavar="SPEC", help=HELP["amplifier"])
    t.add_argument("--converters", metavar="SPEC", help=HELP["converters"])
    t.add_argument("--neurons", choices=("float", "integer"), help=HELP["neurons"])
    t.add_argument("--noise-window", dest="noise_window", type=nonnegative, metavar="SECONDS", help=HELP["noise_window"])
    t.add_argument("--out", help="run directory (default runs/DATASET-BACKEND-seedN); must be new or empty")
    t.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint (with --epochs N: train "
                                                   "it further to N epochs)")
    t.add_argument("--checkpoint-every", dest="checkpoint_every", type=nonnegative, metavar="SECONDS",
                   help=HELP["checkpoint_every"] + " (default 600)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (none is shown when stderr is not a "
                                                              "terminal)")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="accuracy of a trained run")
    e.add_argument("run", help="run directory")
    e.add_argument("--split", choices=["test", "train"], default="test", help="which split to evaluate")
    e.add_argument("--data", metavar="PATH", help="the run's data file where it was moved or copied (checked against "
                                                  "the sha256 the run recorded)")
    e.add_argument("--nodes", action="store_true", help="also how the circuit uses its nodes: per layer the share of "
                                                        "readings on each diode rail and between, and the voltage swing")
    e.set_defaults(func=cmd_evaluate)
    n = sub.add_parser("netlist", help="export a trained run as an ngspice netlist (ngspice -b runs it)")
    n.add_argument("run", help="run directory of a circuit backend")
    n.add_argument("--out", default="net.cir", help="netlist file to write (an existing one only with --force)")
    n.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    n.add_argument("--split", choices=["test", "train"], default="test", help="where the samples come from")
    n.add_argument("--sample", type=index, default=0, help="first sample at the inputs")
    n.add_argument("--count", type=count, default=1, help="samples (more than 1: swept by .dc)")
    n.add_argument("--beta", type=float, default=0.0, help="write the nudged phase (relative beta, as in train)")
    n.add_argument("--nudge", choices=["current", "conductance"], default="current", help="how the nudge is written")
    n.add_argument("--wire", type=positive, metavar="OHMS", help="lay the network out as crossbars with this "
                                                              "resistance per wire segment (eqprop parasitics)")
    n.set_defaults(func=cmd_netlist)
    ph = sub.add_parser("physics", help="static power, settling time and energy per inference (ngspice)")
    ph.add_argument("run", nargs="*", help="run directories (default: two example networks)")
    ph.add_argument("--sizes", nargs="+", help="layered networks to build, e.g. 64-32-10 1568-100-20")
    ph.add_argument("--capacitance", type=positive, default=1e-12, help="farads from every free node to ground")
    ph.add_argument("--samples", type=count, default=3, help="random inputs per network")
    ph.add_argument("--wire", type=positive, metavar="OHMS", help="lay the networks out as crossbars with this "
                                                              "resistance per wire segment (eqprop parasitics)")
    ph.add_argument("--wire-capacitance", type=positive, metavar="F",
                    help="farads from each crossbar wire node to ground, with --wire (default: 1 fF, a segment of a "
                         "few micrometres)")
    ph.set_defaults(func=cmd_physics)
    nz = sub.add_parser("noise", help="thermal noise of the equilibrium: the native model against ngspice's noise "
                                      "analysis and transients with a noise source on every conductance")
    nz.add_argument("--sizes", nargs="+", help="layered networks to build instead of the two examples, e.g. 12-8-4")
    nz.add_argument("--gain", type=positive, help="amplifier gain of the --sizes networks (default 1: no amplifier)")
    nz.add_argument("--diode", choices=("ideal", "pwl"), help="diodes of the --sizes networks (default: none, linear)")
    nz.add_argument("--capacitance", type=positive, default=1e-12, help="farads from every free node to ground")
    nz.add_argument("--window", type=nonnegative, default=0.0,
                    help="also compare averages over this many slowest time constants (0: none)")
    nz.add_argument("--temperature", type=positive, default=300.15, help="kelvin")
    nz.add_argument("--transient", dest="spans", type=nonnegative, default=0.0,
                    help="also run an ngspice transient with noise sources this many slowest time constants long "
                         "(0: only ngspice's noise analysis; 1000 gives about 3%% per node in a minute or so)")
    nz.add_argument("--steps-per-tau", dest="steps_per_tau", type=positive, default=50.0,
                    help="noise samples per fastest time constant")
    nz.add_argument("--seed", type=count, default=1, help="network and input seed (ngspice draws its noise afresh each run)")
    nz.set_defaults(func=cmd_noise)
    to = sub.add_parser("tolerance", help="what it takes to learn: the EqProp gradient and digits accuracy under the "
                                          "circuit's thermal noise")
    to.add_argument("--out", default="reports/tolerance", help="directory for the table, plot and JSON")
    to.add_argument("--capacitance", type=positive, nargs="+", default=[1e-15, 1e-14, 1e-13, 1e-12],
                    help="node capacitances to compare, farads")
    to.add_argument("--beta", type=positive, nargs="+", default=[0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3],
                    help="nudging strengths for the gradient, relative to the output nodes' conductance")
    to.add_argument("--draws", type=count, default=10, help="noise draws per gradient point")
    to.add_argument("--epochs", type=count, default=10, help="epochs of each training run")
    to.add_argument("--window", type=nonnegative, default=0.0, help="measurement window of the training runs, seconds")
    to.add_argument("--seed", type=index, default=0, help="network, data order and noise seed")
    to.set_defaults(func=cmd_tolerance)
    di = sub.add_parser("dies", help="a trained run programmed onto many dies: accuracy under conductance, "
                                     "amplifier and diode mismatch (Monte Carlo), optionally checked in ngspice")
    di.add_argument("run", help="a run directory of a circuit backend")
    di.add_argument("--out", default="reports/dies", help="directory for the table and JSON")
    di.add_argument("--dies", type=count, default=20, help="dies to draw (seeds 0, 1, ...)")
    di.add_argument("--conductance", type=nonnegative, default=0.05, help="relative spread of every conductance")
    di.add_argument("--amplifier-offset", dest="amplifier_offset", type=nonnegative, default=0.0, metavar="VOLTS",
                    help="spread of each amplifier's input offset")
    di.add_argument("--amplifier-gain", dest="amplifier_gain", type=nonnegative, default=0.0, metavar="REL",
                    help="relative spread of each amplifier's loop gain")
    di.add_argument("--diode-is-spread", dest="diode_is_spread", type=nonnegative, default=0.0, metavar="SIGMA",
                    help="Shockley neuron diodes: each diode's saturation current IS x exp(SIGMA z) (log-normal)")
    di.add_argument("--diode-n-spread", dest="diode_n_spread", type=nonnegative, default=0.0, metavar="REL",
                    help="Shockley neuron diodes: relative spread of each diode's emission coefficient N")
    di.add_argument("--dead-nodes", dest="dead_nodes", type=nonnegative, default=0.0, metavar="FRACTION",
                    help="fraction of hidden nodes dead on each die (shorted to 0 V, each die its own draw); a run "
                         "trained with --dropout is made for it")
    di.add_argument("--spice", type=index, default=0, metavar="N",
                    help="also solve the first N dies' first 40 test images (dies.SPICE_IMAGES) in ngspice and compare")
    di.add_argument("--data", help="the run's data file where it was moved or copied")
    di.add_argument("--cluster", metavar="ADDRESS", help="the dies as Ray tasks: 'ray' for a local instance, or a "
                                                         "cluster's address ('auto', 'host:6379')")
    di.set_defaults(func=cmd_dies)
    pa = sub.add_parser("parasitics", help="a trained run laid out as crossbars with resistive row and column wires: "
                                           "accuracy and node shifts against ideal wires, optionally in ngspice")
    pa.add_argument("run", help="a run directory of a circuit backend")
    pa.add_argument("--wire", type=positive, nargs="+", required=True, metavar="OHMS",
                    help="wire resistance per segment between neighbouring crossings, one or more values")
    pa.add_argument("--images", type=count, default=100, help="first test images to solve (default 100; all 360 "
                                                                "of digits on 128-100-20 take seconds)")
    pa.add_argument("--spice", type=index, default=0, metavar="N",
                    help="also solve the first N images of each wire resistance in ngspice and compare")
    pa.add_argument("--out", default="reports/parasitics", help="directory for the table and JSON")
    pa.add_argument("--data", help="the run's data file where it was moved or copied")
    pa.set_defaults(func=cmd_parasitics)
    tr = sub.add_parser("transistors", help="amplifiers and clamps at transistor level (on a published process): "
                                            "characterised in ngspice, trained on natively, the trained network "
                                            "checked in ngspice with the transistors")
    tr.add_argument("--out", default="reports/transistors",
                    help="directory for the tables, the part models (amplifier.json: eqprop train --amplifier takes "
                         "it; clamp.json: --diode) and JSON")
    tr.add_argument("--parts", nargs="+", choices=("amplifier", "clamp"), default=["amplifier", "clamp"],
                    help="which parts are transistors")
    tr.add_argument("--design", default="", metavar="SPEC",
                    help="the op-amp's design as key=value (TwoStageOpAmp's fields), e.g. 'ibias=5e-6 w_out=60e-6'; "
                         "default: process baker-1um, Ibias 10 uA")
    tr.add_argument("--clamp", default="", metavar="SPEC",
                    help="the clamp's design as key=value (PmosClamp's fields), e.g. 'w=50e-6 shift=0.55'; default: "
                         "baker-1um, W 100 um, bias 0.6 V past the rails")
    tr.add_argument("--run", help="check this trained run instead of training")
    tr.add_argument("--config", metavar="RECIPE.toml", help="train this recipe (its parts replaced by the "
                                                            "transistor tables) instead of digits 128-100-20")
    tr.add_argument("--hidden", type=count, nargs="+", help="hidden layer sizes of the runs (default 100)")
    tr.add_argument("--epochs", type=count, help="epochs of the runs (default 5)")
    tr.add_argument("--seed", type=index, help="network and data-order seed of the runs (default 0)")
    tr.add_argument("--samples", type=index, default=0, help="test images solved in ngspice (0: all)")
    tr.add_argument("--data", help="the run's data file where it was moved or copied (with --run)")
    tr.set_defaults(func=cmd_transistors)
    am = sub.add_parser("amplifiers", help="what the amplifiers must be: settling vs gain-bandwidth in ngspice, and "
                                           "digits accuracy vs op-amp DC gain, offset mismatch and swing")
    am.add_argument("--out", default="reports/amplifiers", help="directory for the tables, plot and JSON")
    am.add_argument("--gbw", type=positive, nargs="+", default=[1e5, 1e6, 1e7, 1e8, 1e9],
                    help="op-amp gain-bandwidth products to simulate, Hz")
    am.add_argument("--base", default="a0=1e5", metavar="SPEC",
                    help="the op-amp each GBW is added to (as --amplifier of train; default 'a0=1e5')")
    am.add_argument("--capacitance", type=positive, default=1e-12, help="node capacitance of the transients, farads")
    am.add_argument("--amplifier", nargs="+", metavar="SPEC", default=None,
                    help="amplifiers to train with ('ideal', 'a0=1e3', 'a0=1e4 offset_sigma=5e-3', ...); default: a "
                         "ladder of DC gains, offset mismatches and swings")
    am.add_argument("--epochs", type=count, default=10, help="epochs of each training run")
    am.add_argument("--hidden", type=count, nargs="+", default=[100], help="hidden layer sizes")
    am.add_argument("--seed", type=index, default=0, help="network and data order seed")
    am.set_defaults(func=cmd_amplifiers)
    gc = sub.add_parser("gradcheck", help="EqProp gradient vs exact gradient, vs beta, native and ngspice")
    gc.add_argument("--out", default="reports/gradient", help="directory for the table, plot and JSON")
    gc.add_argument("--no-spice", action="store_true", help="native backend only")
    gc.add_argument("--spice", nargs="+", default=["1e-3:1e-3", "1e-6:1e-6", "1e-9:1e-9"],
                    help="ngspice settings to compare, RELTOL:SETTLE_TOL (volts; see SpiceOptions.sweep_tol)")
    gc.set_defaults(func=cmd_gradcheck)
    sw = sub.add_parser("sweep", help="a grid of training runs from a TOML file: one run per point, one table")
    sw.add_argument("file", help="sweep file with [sweep], [base] and [grid] tables (see docs/sweep.toml)")
    sw.add_argument("--out", help="directory for the runs and the summary (default: [sweep] out)")
    sw.add_argument("--cluster", help="run the points as Ray tasks: 'ray' (local) or a Ray address")
    sw.set_defaults(func=cmd_sweep)
    tu = sub.add_parser("tune", help="search a recipe's rates, nudging, input scale, batch size and decay with Optuna "
                                     "(TPE, pruning), scored on held-out training samples; writes the best as a recipe")
    tu.add_argument("file", help="search file with [tune], [train] and [search] tables (see docs/tune.md)")
    tu.add_argument("--out", help="directory of the study, its trials and summary (default: [tune] out); rerun to resume")
    tu.add_argument("--trials", type=count, help="finished trials in all (default: [tune] trials)")
    tu.add_argument("--jobs", type=count, help="trials at once, in processes (default: [tune] jobs)")
    tu.add_argument("--data", help="data path (an .npz or a directory of IDX files), in place of [train] data")
    tu.add_argument("--cluster", help="run the trials as Ray tasks: 'ray' (local) or a Ray address (the output "
                                      "directory must be on a file system every node sees)")
    tu.set_defaults(func=cmd_tune)
    lo = sub.add_parser("loihi", help="a trained run on the bit-accurate Loihi path: accuracy, error bound, "
                                      "spikes, synaptic ops, energy per inference")
    lo.add_argument("run", help="run directory of a resistive backend (native, spice, lava, loihi)")
    lo.add_argument("--threshold", type=nonnegative, nargs="+", default=[1e-4],
                    help="sigma-delta threshold(s) in volts (binary: spike quantum); several make a sweep")
    lo.add_argument("--spikes", choices=("graded", "binary"), default="graded", help="graded payloads or binary spikes")
    lo.add_argument("--time-steps", dest="time_steps", type=count, default=64, help="time steps per inference")
    lo.add_argument("--alpha", type=positive, default=0.5, help="dt G / C of the neurons' leaky integration, (0, 1]")
    lo.add_argument("--leak", choices=("reciprocal", "measured"), default="reciprocal",
                    help="how a neuron divides by its conductance: a host-computed reciprocal of the mapped G, or "
                         "forward Euler with G measured on chip in two calibration steps per sample (docs/loihi.md)")
    lo.add_argument("--n-test", dest="n_test", type=count, help="use only the first N test samples")
    lo.add_argument("--lava", type=index, default=0, help="also run this many samples through the Lava processes "
                                                         "(bit-exact check and Lava's throughput)")
    lo.add_argument("--out", help="directory for loihi.json and, for several thresholds, loihi_thresholds.png")
    lo.set_defaults(func=cmd_loihi)
    oc = sub.add_parser("onchip", help="Lava on-chip learning (LearningDense) vs host-side EqProp: cosine")
    oc.add_argument("--hidden", type=count, nargs="+", default=[100], help="hidden layer sizes")
    oc.add_argument("--samples", type=count, default=16, help="batch (digits training samples)")
    oc.add_argument("--beta", type=positive, default=0.01, help="relative to the mean output-node conductance")
    oc.add_argument("--nudging", nargs="+", choices=["positive", "centered"], default=["positive", "centered"],
                    help="nudging forms to measure")
    oc.add_argument("--step", type=positive, nargs="+", default=[1e-7, 1e-4],
                    help="largest update per batch / largest conductance (the engine updates during the run)")
    oc.add_argument("--int-step", type=positive, nargs="*", default=[1e-2],
                    help="steps for the bit-approximate engine's table (none: skip it)")
    oc.add_argument("--repeats", type=count, default=3, help="bit-approximate runs per step (other draws of the neurons' rounding)")
    oc.add_argument("--neurons", choices=("float", "integer"), default="float",
                    help="the bit-approximate runs' neurons: float, or integer (a leak measured in integers, forward "
                         "Euler in voltage LSBs; docs/onchip.md)")
    oc.add_argument("--seed", type=index, default=0, help="random seed")
    oc.add_argument("--timeout", type=positive, default=900.0, help="seconds per Lava command")
    oc.set_defaults(func=cmd_onchip)
    co = sub.add_parser("cosim", help="mixed-signal co-simulation (ngspice core + Lava periphery): settling, "
                                      "energy, digital ops, converter bounds, loop stability")
    co.add_argument("--run", help="a run directory whose trained conductances to use (default: untrained digits)")
    co.add_argument("--hidden", type=count, nargs="+", default=[100], help="hidden layer sizes (without --run)")
    co.add_argument("--samples", type=count, default=4, help="digits test samples")
    co.add_argument("--beta", type=positive, default=0.1, help="relative to the mean output-node conductance")
    co.add_argument("--bits", type=count, nargs="+", default=[8, 10, 12, 16], help="converter resolutions to check")
    co.add_argument("--ratios", type=positive, nargs="+", default=[0.9, 1.1],
                    help="periods to try, as multiples of the derived stability limit")
    co.add_argument("--latencies", type=index, nargs="+", default=[0, 1, 2],
                    help="converter latencies (periods) whose stability limits to measure")
    co.add_argument("--converters", metavar="SPEC", help=HELP["converters"])
    co.add_argument("--noise-capacitance", dest="noise_capacitance", type=positive, metavar="FARADS",
                    help="node capacitance with every conductance's thermal noise (27 C); default 1 pF, noiseless")
    co.add_argument("--noise", choices=("sampled", "transient"), default="sampled",
                    help="thermal noise drawn from the circuit's noise model at every conversion (seeded), or noise "
                         "sources in the ngspice transients (slower, not repeatable)")
    co.add_argument("--seed", type=index, default=0, help="random seed")
    co.add_argument("--out", help="directory for cosim.json")
    co.set_defaults(func=cmd_cosim)
    ni = sub.add_parser("nonideal", help="accuracy under each programming model (bounds, levels, noise, asymmetry)")
    _experiment_flags(ni, datasets, HELP, hidden=[100], epochs=10)
    ni.add_argument("--devices", nargs="+", choices=PRESETS, help="programming models to try (default: all)")
    ni.set_defaults(func=cmd_nonideal)
    cp = sub.add_parser("compare", help="every backend on one network and one initialisation: a report")
    _experiment_flags(cp, datasets, HELP, hidden=[32], epochs=3)
    cp.add_argument("--lr", type=nonnegative, nargs="+", help=HELP["lr"])
    cp.add_argument("--n-train", dest="n_train", type=count, help=HELP["n_train"])
    cp.add_argument("--n-test", dest="n_test", type=count, help=HELP["n_test"])
    cp.add_argument("--batch-size", dest="batch_size", type=count, help="samples per update of the training runs "
                                                                       "(default: each backend's own)")
    cp.add_argument("--workers", type=count, default=1, help="ngspice processes")
    cp.add_argument("--backends", nargs="+", choices=names, help="backends to compare (default: every one that "
                                                                   "settles the network as drawn; not wired)")
    cp.add_argument("--out", default="reports/compare", help="report directory")
    cp.set_defaults(func=cmd_compare)
    rp = sub.add_parser("report", help="the results table of run directories (markdown and JSON), from their own "
                                       "metrics, configs and provenance")
    rp.add_argument("run", nargs="+", help="run directories")
    rp.add_argument("--out", help="directory for results.md and results.json (default: print only)")
    rp.set_defaults(func=cmd_report)
    d = sub.add_parser("demo", help="every part in about two minutes: the example network, digits training, the "
                                    "trained network in ngspice, on the Loihi path and Lava, a short compare")
    d.add_argument("--epochs", type=count, default=10, help=HELP["epochs"])
    d.add_argument("--out", default="runs/demo", help="demo directory (new, empty, or an earlier demo's): "
                                                      "OUT/run, OUT/net.cir and OUT/compare")
    d.add_argument("--no-compare", action="store_true", help="skip the closing compare of every backend")
    d.add_argument("--no-hardware", action="store_true", help="skip the ngspice netlist and the Loihi/Lava stages")
    d.set_defaults(func=cmd_demo)
    return p


class _Stdout:
    """stdout that a closed pipe (``eqprop train ... | head -2``) cannot stop: after the reader goes, output is
    dropped and the command goes on (a run keeps training and checkpointing)."""

    def __init__(self, stream):
        self.stream, self.closed_pipe = stream, False

    def write(self, text):
        if not self.closed_pipe:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self.closed_pipe = True
        return len(text)

    def flush(self):
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.closed_pipe = True

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _stop_on_signal(signum, frame):
    raise KeyboardInterrupt  # SIGTERM and SIGHUP end a command as Ctrl-C does: locks released, resume hint


def main(argv=None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    if threading_main():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _stop_on_signal)
    if not isinstance(sys.stdout, _Stdout):
        sys.stdout = _Stdout(sys.stdout)
    try:
        return args.func(args)
    except _user_errors() as e:
        print(f"eqprop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ConvergenceError as e:  # a solve that found no equilibrium: said in one line, not as a traceback
        print(f"eqprop {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\neqprop {args.command}: interrupted", file=sys.stderr)
        return 130


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
