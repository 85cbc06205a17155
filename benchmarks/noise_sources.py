"""ngspice's two transient noise sources, measured: does each keep its variance over a long run and from run to run?

    python benchmarks/noise_sources.py [--ms 4] [--runs 4]

Why the netlists put ``trrandom`` (Gaussian samples held for a time step) and not ``trnoise`` on every conductance
(``netlists.writer.Transient.noise_temperature``). Two checks with the ngspice program (``ngspice -b``), each for
both sources:

1. Generator: four unit sources of 1 ns samples over ``--ms`` milliseconds (a million samples a millisecond each),
   read at every sample; the mean square of each source in each tenth of the run (1.0 is right; at 4 ms about
   0.002 its statistical spread).
2. Network: the 6-4-2 network of ``eqprop noise --sizes 6-4-2`` (seed 3, 1 pF) with every conductance's thermal
   noise, ``--runs`` transients of 3000 slowest time constants one after another in the same ngspice; per run the
   mean over the nodes of (rms / the model's rms - 1), the model being ``circuits.noise.ThermalNoise`` (kT/C on
   every node of this plain network).

About three minutes. Measured, never asserted (``tests/test_noise.py`` asserts the network check).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

FORMS = {"trnoise": "trnoise({a} {nt} 0 0)", "trrandom": "trrandom(2 {nt} 0 {a} 0)"}


def _ngspice(deck: str, folder: Path) -> None:
    (folder / "deck.cir").write_text(deck)
    r = subprocess.run(["ngspice", "-b", "deck.cir"], cwd=folder, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"ngspice failed: {r.stderr.strip()[-300:]}")


def generator(form: str, ms: float, folder: Path) -> np.ndarray:
    """(tenths, sources) mean squares of four unit sources of 1 ns samples."""
    src = FORMS[form].format(a=1, nt="1n")
    lines = ["* four unit noise sources"] + [f"V{k} n{k} 0 dc 0 {src}\nR{k} n{k} 0 1k" for k in range(4)]
    vs = " ".join(f"v(n{k})" for k in range(4))
    lines += [".control", f"tran 1n {ms}m", f"linearize {vs}", f"wrdata gen.txt {vs}", "quit 0", ".endc", ".end"]
    _ngspice("\n".join(lines) + "\n", folder)
    v = np.loadtxt(folder / "gen.txt")[1:, 1::2]  # the sample at t = 0 is the source's 0
    n = len(v) // 10
    return np.array([(v[i * n:(i + 1) * n] ** 2).mean(0) for i in range(10)])


def network(form: str, runs: int, folder: Path) -> list:
    """Per run, the mean over the nodes of (rms / model - 1) of the 6-4-2 transient, all runs in one ngspice."""
    from eqprop.circuits import solve
    from eqprop.circuits.noise import ThermalNoise
    from eqprop.experiments.noise import layered
    from eqprop.netlists import NgspiceCircuit, Transient, to_netlist

    net = layered([6, 4, 2], diode=None, rails=(-0.05, 0.05), gain=1.0, seed=3)
    x = np.random.default_rng(3).uniform(0, 1, (1, net.n_features))
    eq = solve(net, x, tol=1e-12)
    model = ThermalNoise(1e-12)
    tau, fast = model.time_constants(net, [v[0] for v in eq.layers])
    want = model.node_std(net, eq.layers)[0]
    noisy = Transient(1e-12, 3020 * tau, fast / 50, noise_temperature=300.15)
    # the deck eqprop noise --transient runs: its options, no control block
    netlist = to_netlist(net, x, options=NgspiceCircuit(net).options, analysis="tran", transient=noisy, control=False)
    body = [line for line in netlist.text.splitlines() if not line.startswith((".tran", ".end"))]
    if form == "trnoise":  # the writer's held samples back to ngspice's trnoise, same rms and step
        body = [re.sub(r"trrandom\(2 (\S+) 0 (\S+) 0\)", r"trnoise(\2 \1 0 0)", line) for line in body]
    vs = " ".join(f"v({n})" for n in netlist.free_nodes)
    step = fast / 50
    control = [".control"] + [c for i in range(runs) for c in (f"tran {step!r} {3020 * tau!r} uic", f"linearize {vs}",
                                                               f"wrdata run{i}.txt {vs}", "destroy all")]
    _ngspice("\n".join(body + control + ["quit 0", ".endc", ".end"]) + "\n", folder)
    out = []
    for i in range(runs):
        d = np.loadtxt(folder / f"run{i}.txt")
        v = d[d[:, 0] > 20 * tau][:, 1::2]
        out.append(float((v.std(0, ddof=1) / want - 1).mean()))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ms", type=float, default=4.0, help="milliseconds of the generator check")
    p.add_argument("--runs", type=int, default=4, help="transients of the network, one after another")
    args = p.parse_args(argv)
    if not (0 < args.ms <= 100):
        p.error(f"--ms {args.ms:g}: give 0 to 100 milliseconds (4 takes about a minute per source)")
    if not 1 <= args.runs <= 20:
        p.error(f"--runs {args.runs}: give 1 to 20 transients")
    if shutil.which("ngspice") is None:
        raise SystemExit("this check runs the ngspice program, which is not on PATH: install it (make setup does, "
                         "scripts/ensure-ngspice)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"# 1. mean square of four unit sources (1 ns samples) in each tenth of {args.ms:g} ms")
        print("| source | " + " | ".join(f"{k + 1}/10" for k in range(10)) + " |")
        print("|---|" + "---|" * 10)
        for form in FORMS:
            ms = generator(form, args.ms, folder)
            print(f"| {form} | " + " | ".join(f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(ms.min(1), ms.max(1))) + " |",
                  flush=True)
        print(f"\n# 2. 6-4-2 with thermal noise, {args.runs} transients of 3000 slowest time constants in one ngspice: "
              "mean over the nodes of rms / model - 1")
        print("| source | " + " | ".join(f"run {i + 1}" for i in range(args.runs)) + " |")
        print("|---|" + "---|" * args.runs)
        for form in FORMS:
            print(f"| {form} | " + " | ".join(f"{d:+.1%}" for d in network(form, args.runs, folder)) + " |", flush=True)


if __name__ == "__main__":
    main()
