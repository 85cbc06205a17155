"""How far ngspice's ideal-diode stand-in (a 1 S piecewise-linear diode, ``IdealDiode.spice_stand_in``) is
from the native ideal-diode solution, on random networks with many nodes on the rails.

    python benchmarks/ideal_stand_in.py

Networks with ideal diodes at rails +-0.05 V, gain 4, seed 0; 8 random input samples in [0, 3] V (so a
realistic share of nodes clamps). Prints the share of free nodes on a rail, the largest node and output
deviation of ngspice from native, and ngspice's time. Measured, never asserted.
"""
import time

import numpy as np

from eqprop.circuits import layered, solve
from eqprop.netlists import NgspiceCircuit


def main():
    print("| network | nodes on a rail | max node deviation (V) | max output deviation (V) | ngspice s |")
    print("|---|---|---|---|---|")
    for sizes in ([8, 6, 4], [128, 100, 20], [128, 32, 20]):
        net = layered(sizes, diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
        x = np.random.default_rng(1).uniform(0, 1, (8, net.n_features)) * 3
        native = solve(net, x)
        t0 = time.perf_counter()
        spice = NgspiceCircuit(net).equilibrium(x)
        seconds = time.perf_counter() - t0
        clamped = float((np.abs(native.voltages) >= 0.05 - 1e-12).mean())
        print(f"| {'-'.join(map(str, sizes))} | {clamped:.0%} | {np.abs(spice.voltages - native.voltages).max():.1e} | "
              f"{np.abs(spice.prediction - native.prediction).max():.1e} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
