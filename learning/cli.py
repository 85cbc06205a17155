"""The ``eqprop`` command line: info, solve, train, evaluate, demo.

User mistakes (bad paths, bad configs, bad inputs) end in one line naming the problem and exit code
2, not a traceback from inside a library.
"""
from __future__ import annotations

import argparse
import ctypes.util
import importlib.metadata as md
import platform
import sys
from pathlib import Path

import numpy as np

USER_ERRORS = (ValueError, FileNotFoundError, KeyError)


def _user_errors():
    """Errors that end in one line: user mistakes, and a simulator that is missing or fails."""
    from eqprop.neuromorphic import LavaError  # light: Lava itself only loads in a session's own process

    try:
        from eqprop.netlists import SpiceError
    except ImportError:  # PySpice missing: nothing of netlists can be raised then
        return USER_ERRORS + (LavaError,)
    return USER_ERRORS + (SpiceError, LavaError)


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
    ok, where = ngspice_status()
    rows = [("eqprop-hw", _version("eqprop-hw")), ("python", platform.python_version()),
            ("numpy", np.__version__), ("scipy", _version("scipy")), ("networkx", _version("networkx")),
            ("PySpice", _version("PySpice")), ("lava-nc", _version("lava-nc")),
            ("libngspice", f"loads: {where}" if ok else f"NOT loadable; looked for {where}. "
                                                        "Install: apt-get install -y ngspice libngspice0-dev"),
            ("cores", str(__import__("os").cpu_count()))]
    for k, v in rows:
        print(f"{k:<10} {v}")
    return 0


def example_network():
    from eqprop.circuits import layered

    return layered([8, 6, 4], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)


def cmd_solve(args) -> int:
    from eqprop.circuits import solve

    net = example_network()
    x = np.array([[1.0, 0.0, 0.5, 0.25]])
    print("example network: 4 features as +x/-x sources (8), 6 hidden nodes with ideal diodes to rails +/-0.05 V,")
    print("gain-4 amplifiers, 2 output pairs; input x =", x[0].tolist())
    free = solve(net, x)
    nudged = solve(net, x, np.array([[0.05, -0.05]]), beta=1e-7, init=free)
    names = net.free_node_names()
    print(f"{'node':<8} {'free (V)':>12} {'nudged (V)':>12}")
    for n, a, b in zip(names, free.voltages[0], nudged.voltages[0]):
        print(f"{n:<8} {a:>12.6f} {b:>12.6f}")
    print(f"prediction (V+ - V-): free {np.round(free.prediction[0], 6).tolist()}, "
          f"nudged {np.round(nudged.prediction[0], 6).tolist()}")
    print(f"sweeps {free.iterations}/{nudged.iterations}, max KCL residual {max(free.residual, nudged.residual):.2e} A")
    return 0


def _config_from_args(args):
    from .trainer import TrainConfig

    cfg = TrainConfig()
    for key in ("dataset", "data", "backend", "epochs", "batch_size", "momentum", "beta", "nudging", "diode",
                "gain", "device", "seed", "n_train", "n_test", "lr_decay", "target_amplitude", "workers",
                "diode_is", "fixed_point", "cluster", "checkpoint_every"):
        val = getattr(args, key, None)
        if val is not None:
            setattr(cfg, key, val)
    if args.hidden is not None:
        cfg.hidden = list(args.hidden)
    if args.lr is not None:
        cfg.lr = list(args.lr)
    if args.rails is not None:
        cfg.rails = tuple(args.rails)
    if cfg.backend == "hopfield":  # the digital reference's own defaults (Scellier & Bengio 2017)
        from .hopfield_train import DEFAULT_BETA, DEFAULT_LR

        cfg.lr = list(args.lr) if args.lr is not None else DEFAULT_LR[:len(cfg.hidden) + 1]
        cfg.beta = args.beta if args.beta is not None else DEFAULT_BETA
        cfg.momentum = args.momentum if args.momentum is not None else 0.0
        cfg.lr_decay = args.lr_decay if args.lr_decay is not None else 1.0
        cfg.batch_size = args.batch_size if args.batch_size is not None else 20
        cfg.nudging = args.nudging if args.nudging is not None else "random"
        cfg.tol = 1e-7  # units in [0, 1]; far below what beta = 0.5 moves them
    return cfg


def cmd_train(args) -> int:
    from .runs import load_config, train

    if args.resume:
        cfg = load_config(args.resume)
        out = args.resume
    else:
        cfg = _config_from_args(args).validate()
        out = args.out or f"runs/{cfg.dataset}-{cfg.backend}-seed{cfg.seed}"
    print(f"training {cfg.backend} backend on {cfg.dataset}: hidden {cfg.hidden}, {cfg.epochs} epochs -> {out}")
    last = train(cfg, out, resume=bool(args.resume), progress=not args.no_progress)
    if last.get("test_accuracy") is not None:
        print(f"test accuracy {last['test_accuracy']:.4f} (error {100 * (1 - last['test_accuracy']):.2f}%); "
              f"run directory {out}")
    return 0


def cmd_evaluate(args) -> int:
    from .runs import evaluate_run

    r = evaluate_run(args.run, args.split)
    print(f"{args.split} accuracy {r['accuracy']:.4f}  loss {r['loss']:.4e}")
    return 0


def cmd_demo(args) -> int:
    from .runs import train
    from .trainer import TrainConfig

    print("== equilibrium of the example network (native solver) ==")
    cmd_solve(args)
    out = Path(args.out)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    cfg = TrainConfig(dataset="digits", hidden=[100], epochs=args.epochs)
    print(f"\n== EqProp training, native backend, digits (64 features -> 128 sources, 100 hidden, 10 pairs) ==")
    last = train(cfg, out, progress=sys.stderr.isatty())
    print(f"digits test accuracy {last['test_accuracy']:.4f}; run directory {out}")
    if not args.no_compare:
        from .compare import compare

        report_dir = out.parent / "demo-compare"
        print("\n== short compare of every backend (native, ngspice, Lava, Hopfield reference) on digits ==")
        compare(report_dir, hidden=[16], epochs=2, n_train=400, n_test=200, log=lambda *_: None)
        print((report_dir / "report.md").read_text())
        print(f"report: {report_dir / 'report.md'}")
    return 0


IDEAL_STAND_IN = dict(i_s=1e-12, n=0.02)  # a sharp Shockley knee (about 5 mV past the rail at nA currents)


def cmd_netlist(args) -> int:
    """A trained run's network as an ngspice netlist with one (or more) test samples at its inputs."""
    from eqprop.circuits import ShockleyDiode
    from eqprop.netlists import to_netlist

    from .data import load, targets
    from .runs import load_checkpoint, load_config

    cfg = load_config(args.run)
    net, state, _ = load_checkpoint(args.run)
    ds = load(cfg.dataset, cfg.data, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    x_all = ds.x_test if args.split == "test" else ds.x_train
    y_all = ds.y_test if args.split == "test" else ds.y_train
    idx = list(range(args.sample, args.sample + args.count))
    if idx[-1] >= len(x_all):
        raise ValueError(f"--sample {args.sample} --count {args.count} is past the {len(x_all)} {args.split} samples")
    x = x_all[idx] * cfg.input_scale
    y = targets(y_all[idx], ds.n_classes, cfg.target_amplitude)
    beta = args.beta * state["beta_abs"] / cfg.beta if args.beta else 0.0
    ideal = ShockleyDiode(**IDEAL_STAND_IN) if any(
        n is not None and n.diode.kind == "ideal" for n in net.neurons) else None
    text = to_netlist(net, x, y if beta else None, beta, nudge=args.nudge, ideal_diode=ideal,
                      title=f"eqprop-hw run {args.run}: {args.split} samples {idx[0]}..{idx[-1]} "
                            f"(labels {y_all[idx].tolist()})")
    out = Path(args.out)
    text.write(out)
    print(f"wrote {out}: {len(text.free_nodes)} free nodes, {text.text.count(chr(10) + 'R_')} resistors, "
          f"{len(idx)} sample(s){'; ideal diodes approximated by Shockley ' + str(IDEAL_STAND_IN) if ideal else ''}")
    print(f"run it by hand with: ngspice -b {out}")
    return 0


def cmd_physics(args) -> int:
    """Static power, settling time and energy per inference in ngspice, one line per network."""
    from eqprop.circuits import ShockleyDiode, layered
    from eqprop.netlists import NgspiceCircuit
    from eqprop.netlists.transient import settling

    from .runs import load_checkpoint

    nets = []
    for run in args.run or []:
        nets.append((str(run), load_checkpoint(run)[0]))
    for sizes in args.sizes or (["64-32-10", "128-100-20"] if not args.run else []):
        shape = [int(s) for s in sizes.split("-")]
        nets.append((sizes, layered(shape, diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=0)))
    rng = np.random.default_rng(0)
    print(f"node capacitance {args.capacitance:g} F; settling = outputs within 1% (of the largest output) "
          f"of the operating point; {args.samples} random inputs in [0, 1] V per network, mean (max)")
    print(f"| network | free nodes | static power (uW) | settling time (us) | energy per inference (nJ) |")
    print("|---|---|---|---|---|")
    for name, net in nets:
        if any(n is not None and n.diode.kind == "ideal" for n in net.neurons):
            ideal = ShockleyDiode(**IDEAL_STAND_IN)
        else:
            ideal = None
        circuit = NgspiceCircuit(net, ideal_diode=ideal)
        rows = [settling(circuit, rng.uniform(0, 1, (1, net.n_features)), args.capacitance)
                for _ in range(args.samples)]
        p = np.array([r.static_power for r in rows]) * 1e6
        t = np.array([r.settling_time for r in rows]) * 1e6
        e = np.array([r.energy for r in rows]) * 1e9
        print(f"| {name} | {sum(net.free_sizes)} | {p.mean():.2f} ({p.max():.2f}) | {t.mean():.3f} ({t.max():.3f}) "
              f"| {e.mean():.4f} ({e.max():.4f}) |", flush=True)
    return 0


def cmd_gradcheck(args) -> int:
    from .gradcheck import run_gradcheck

    print("EqProp estimate vs exact gradient (implicit differentiation), 32-16-10 Shockley network, batch 32")
    settings = [tuple(float(v) for v in item.split(":")) for item in args.spice]
    if any(len(t) != 2 for t in settings):
        raise ValueError("--spice takes RELTOL:SETTLE_TOL pairs, e.g. 1e-6:1e-6")
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


def cmd_onchip(args) -> int:
    """Lava's learning engine against host-side EqProp on one digits batch."""
    from .data import load, targets
    from .onchip import HEADER, onchip_rows
    from .runs import build_network
    from .trainer import TrainConfig, mean_output_conductance

    cfg = TrainConfig(hidden=args.hidden, seed=args.seed)
    ds = load("digits", seed=args.seed)
    net = build_network(cfg, ds.x_train.shape[1], ds.n_classes)
    x = ds.x_train[:args.samples] * cfg.input_scale
    y = targets(ds.y_train[:args.samples], ds.n_classes, cfg.target_amplitude)
    beta = args.beta * mean_output_conductance(net)
    print(f"on-chip (LearningDense, rule {_rule_text()}) vs host-side EqProp: digits, "
          f"{'-'.join(map(str, net.sizes))} ideal diodes, batch {args.samples}, beta {args.beta:g} (relative)")
    print(HEADER)
    onchip_rows(net, x, y, beta, nudgings=args.nudging, steps=args.step, timeout=args.timeout)
    return 0


def _rule_text() -> str:
    from eqprop.neuromorphic.plastic_network import LEARNING_RULE  # imports Lava: only in this command
    return f"dw = {LEARNING_RULE}"


def cmd_nonideal(args) -> int:
    """One training run per device model, same network and seed: the accuracy each non-ideality costs."""
    import tempfile

    from .device_models import PRESETS, preset
    from .runs import train
    from .trainer import TrainConfig

    print(f"digits-style table: dataset {args.dataset}, hidden {args.hidden}, {args.epochs} epochs, seed {args.seed}, "
          "native backend; g_max = 2 x the largest initial conductance")
    print("| device model | bounds | levels | write noise | asym. (dep/pot) | soft bounds | d2d | test accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.devices or PRESETS:
        cfg = TrainConfig(dataset=args.dataset, data=args.data, hidden=list(args.hidden), epochs=args.epochs,
                          device=name, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            last = train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        d = preset(name, 1.0)
        bounds = "none" if not np.isfinite(d.g_max) else f"[{d.g_min:g}, 1] g_max"
        print(f"| {name} | {bounds} | {d.levels or 'continuous'} | {d.write_noise:g} | "
              f"{d.depression / d.potentiation:g} | {d.soft_bounds} | {d.d2d_variation:g} | "
              f"{last['test_accuracy']:.4f} |", flush=True)
    return 0


def cmd_compare(args) -> int:
    from .compare import compare

    report = compare(args.out, dataset=args.dataset, data=args.data, hidden=args.hidden, epochs=args.epochs,
                     n_train=args.n_train, n_test=args.n_test, seed=args.seed, backends=args.backends,
                     workers=args.workers, log=print)
    print((Path(args.out) / "report.md").read_text())
    missing = [k for k, r in report["backends"].items() if not r.get("available")]
    print(f"report: {Path(args.out) / 'report.md'}" + (f" (not available: {', '.join(missing)})" if missing else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eqprop", description="Train physical networks with Equilibrium Propagation.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, and whether libngspice loads").set_defaults(func=cmd_info)
    sub.add_parser("solve", help="solve and print the example network's free and nudged equilibria").set_defaults(
        func=cmd_solve)
    t = sub.add_parser("train", help="train a network with EqProp")
    t.add_argument("--backend", choices=["native", "spice", "hopfield", "lava"])
    t.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"])
    t.add_argument("--data", help="path: .npz with x_train/y_train/x_test/y_test, or a directory of IDX files")
    t.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (nodes)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float, nargs="+", help="learning rate per connection (relative units)")
    t.add_argument("--lr-decay", dest="lr_decay", type=float)
    t.add_argument("--momentum", type=float)
    t.add_argument("--beta", type=float, help="nudging strength relative to an output node's conductance")
    t.add_argument("--nudging", choices=["centered", "positive", "negative", "random"])
    t.add_argument("--target-amplitude", dest="target_amplitude", type=float, help="volts")
    t.add_argument("--diode", choices=["ideal", "shockley", "pwl"])
    t.add_argument("--diode-is", dest="diode_is", type=float, help="Shockley saturation current (A), e.g. 1e-7")
    t.add_argument("--rails", type=float, nargs=2, help="diode rail voltages, low high")
    t.add_argument("--gain", type=float, help="amplifier gain between layers")
    t.add_argument("--device", choices=["ideal", "bounded", "quantized", "noisy", "memristor"])
    t.add_argument("--seed", type=int)
    t.add_argument("--workers", type=int, help="processes for the spice backend (default: up to 2)")
    t.add_argument("--cluster", help="spice backend on Ray: 'ray' (a local Ray instance) or a cluster address "
                                     "('auto', 'ray://HOST:10001'); default: local worker processes")
    t.add_argument("--fixed-point", dest="fixed_point", action="store_true",
                   help="lava backend: fixed-point models (8-bit weights, 24-bit state) instead of float")
    t.add_argument("--n-train", dest="n_train", type=int)
    t.add_argument("--n-test", dest="n_test", type=int)
    t.add_argument("--out", help="run directory (default runs/DATASET-BACKEND-seedN)")
    t.add_argument("--resume", metavar="RUN", help="continue a killed run from its last checkpoint")
    t.add_argument("--checkpoint-every", dest="checkpoint_every", type=float, metavar="SECONDS",
                   help="also checkpoint inside an epoch this often (default 600; 0: after every step)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="accuracy of a trained run")
    e.add_argument("run")
    e.add_argument("--split", choices=["test", "train"], default="test")
    e.set_defaults(func=cmd_evaluate)
    n = sub.add_parser("netlist", help="export a trained run as an ngspice netlist (ngspice -b runs it)")
    n.add_argument("run")
    n.add_argument("--out", default="net.cir")
    n.add_argument("--split", choices=["test", "train"], default="test")
    n.add_argument("--sample", type=int, default=0, help="first sample at the inputs")
    n.add_argument("--count", type=int, default=1, help="samples (more than 1: swept by .dc)")
    n.add_argument("--beta", type=float, default=0.0, help="write the nudged phase (relative beta, as in train)")
    n.add_argument("--nudge", choices=["current", "conductance"], default="current")
    n.set_defaults(func=cmd_netlist)
    ph = sub.add_parser("physics", help="static power, settling time and energy per inference (ngspice)")
    ph.add_argument("run", nargs="*", help="run directories (default: two example networks)")
    ph.add_argument("--sizes", nargs="+", help="layered networks to build, e.g. 64-32-10 1568-100-20")
    ph.add_argument("--capacitance", type=float, default=1e-12, help="farads from every free node to ground")
    ph.add_argument("--samples", type=int, default=3)
    ph.set_defaults(func=cmd_physics)
    gc = sub.add_parser("gradcheck", help="EqProp gradient vs exact gradient, vs beta, native and ngspice")
    gc.add_argument("--out", default="reports/gradient")
    gc.add_argument("--no-spice", action="store_true", help="native backend only")
    gc.add_argument("--spice", nargs="+", default=["1e-3:1e-3", "1e-6:1e-6", "1e-9:1e-9"],
                    help="ngspice settings to compare, RELTOL:SETTLE_TOL (volts; see SpiceOptions.sweep_tol)")
    gc.set_defaults(func=cmd_gradcheck)
    sw = sub.add_parser("sweep", help="a grid of training runs from a TOML file: one run per point, one table")
    sw.add_argument("file", help="sweep file with [sweep], [base] and [grid] tables (see docs/sweep.toml)")
    sw.add_argument("--out", help="directory for the runs and the summary (default: [sweep] out)")
    sw.add_argument("--cluster", help="run the points as Ray tasks: 'ray' (local) or a Ray address")
    sw.set_defaults(func=cmd_sweep)
    oc = sub.add_parser("onchip", help="Lava on-chip learning (LearningDense) vs host-side EqProp: cosine")
    oc.add_argument("--hidden", type=int, nargs="+", default=[100])
    oc.add_argument("--samples", type=int, default=16, help="batch (digits training samples)")
    oc.add_argument("--beta", type=float, default=0.01, help="relative to the mean output-node conductance")
    oc.add_argument("--nudging", nargs="+", choices=["positive", "centered"], default=["positive", "centered"])
    oc.add_argument("--step", type=float, nargs="+", default=[1e-7, 1e-4],
                    help="largest update per batch / largest conductance (the engine updates during the run)")
    oc.add_argument("--seed", type=int, default=0)
    oc.add_argument("--timeout", type=float, default=900.0, help="seconds per Lava command")
    oc.set_defaults(func=cmd_onchip)
    ni = sub.add_parser("nonideal", help="accuracy under each device model (bounds, levels, noise, asymmetry)")
    ni.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"], default="digits")
    ni.add_argument("--data")
    ni.add_argument("--hidden", type=int, nargs="+", default=[100])
    ni.add_argument("--epochs", type=int, default=10)
    ni.add_argument("--seed", type=int, default=0)
    ni.add_argument("--devices", nargs="+", choices=["ideal", "bounded", "quantized", "noisy", "memristor"])
    ni.set_defaults(func=cmd_nonideal)
    cp = sub.add_parser("compare", help="every backend on one network and one initialisation: a report")
    cp.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"], default="digits")
    cp.add_argument("--data")
    cp.add_argument("--hidden", type=int, nargs="+", default=[32])
    cp.add_argument("--epochs", type=int, default=3)
    cp.add_argument("--n-train", dest="n_train", type=int)
    cp.add_argument("--n-test", dest="n_test", type=int)
    cp.add_argument("--seed", type=int, default=0)
    cp.add_argument("--workers", type=int, default=1, help="ngspice processes")
    cp.add_argument("--backends", nargs="+", default=["native", "spice", "lava", "hopfield"],
                    choices=["native", "spice", "lava", "hopfield"])
    cp.add_argument("--out", default="reports/compare")
    cp.set_defaults(func=cmd_compare)
    d = sub.add_parser("demo", help="solve the example network, then train digits with the native backend")
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--no-compare", action="store_true", help="skip the closing compare of every backend")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as e:
        print(f"eqprop {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
