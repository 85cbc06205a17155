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
                "diode_is"):
        val = getattr(args, key, None)
        if val is not None:
            setattr(cfg, key, val)
    if args.hidden is not None:
        cfg.hidden = list(args.hidden)
    if args.lr is not None:
        cfg.lr = list(args.lr)
    if args.rails is not None:
        cfg.rails = tuple(args.rails)
    return cfg


def cmd_train(args) -> int:
    from .runs import load_config, train

    if args.resume:
        cfg = load_config(args.resume)
        out = args.resume
    else:
        cfg = _config_from_args(args)
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
    t.add_argument("--n-train", dest="n_train", type=int)
    t.add_argument("--n-test", dest="n_test", type=int)
    t.add_argument("--out", help="run directory (default runs/DATASET-BACKEND-seedN)")
    t.add_argument("--resume", metavar="RUN", help="continue a killed run from its last checkpoint")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="accuracy of a trained run")
    e.add_argument("run")
    e.add_argument("--split", choices=["test", "train"], default="test")
    e.set_defaults(func=cmd_evaluate)
    d = sub.add_parser("demo", help="solve the example network, then train digits with the native backend")
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--out", default="runs/demo")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"eqprop {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
