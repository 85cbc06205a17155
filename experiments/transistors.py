"""``eqprop transistors``: the amplifiers at transistor level, characterised, trained on, and checked in ngspice.

1. The bidirectional amplifier as a two-stage Miller op-amp on a published process (``circuits.transistors``) is
   swept in ngspice at DC (``netlists.characterise``): its closed loop's output over input voltage and load current
   at the network's gains becomes a table (OUT/amplifier.json) and a designer's figures (gain, output
   resistance, swing, offset, quiescent power).
2. Digits is trained natively with that table as every amplifier (OUT/run), and beside it with ideal amplifiers
   from the same initialisation (OUT/ideal): what the transistors cost in accuracy. With ``--run RUN`` the given
   run is checked instead (its own table if it was trained on one; otherwise the new table replaces its ideal
   amplifiers).
3. The test images are solved in ngspice with the amplifiers as transistors (the netlist carries the design, not
   the table): the share of images given the same class as the native solver on the table, the node voltages'
   deviation, and ngspice's static power with the amplifiers' supplies read from their sources.
"""
from __future__ import annotations

import json
import time

import numpy as np

from eqprop.circuits import solve
from eqprop.circuits.transistors import TabulatedAmplifier, opamp_design
from eqprop.learning.outputs import OutputDir

FILES = ["transistors.md", "transistors.json", "amplifier.json", "run", "ideal"]
SPICE_BATCH = 20  # test images per ngspice sweep


def _accuracy(net, x, labels, batch: int = 512) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((solve(net, x[i:i + batch]).prediction.argmax(1) == labels[i:i + batch]).sum())
    return correct / len(x)


def run_transistors(out, design: str = "", run=None, hidden=(100,), epochs: int = 5, seed: int = 0,
                    samples: int = 0, data=None, log=print) -> dict:
    from eqprop.learning.data import load_for
    from eqprop.learning.rundir import RunError, check_data, clear_run, relocate_data
    from eqprop.learning.runs import load_run, train
    from eqprop.learning.trainer import TrainConfig
    from eqprop.netlists import NgspiceCircuit
    from eqprop.netlists.characterise import amplifier_figures, characterise_amplifier

    output = OutputDir(out, "transistors", FILES).check()  # refused before anything runs
    part = opamp_design(design)
    if samples < 0:
        raise ValueError(f"--samples {samples}: give 0 (every test image) or more")
    if run is not None:
        cfg, _, trained = load_run(run)
        if not hasattr(trained, "neurons"):
            raise RunError(f"{run} is a run of a digital model (no circuit); give a circuit run")
        if data is not None:
            relocate_data(run, cfg, data)
        check_data(run, cfg)
        gains = [g for g, w in zip(trained.gains, trained.weights) if g != 1.0]
    else:
        cfg = TrainConfig(dataset="digits", hidden=list(hidden), epochs=epochs, seed=seed).resolve().validate()
        gains = [g for g in cfg.gains() if g != 1.0]
    if not gains:
        raise RunError("the network has no amplifiers (every gain is 1); nothing to put transistors in")
    lines: list = []

    def both(text=""):
        lines.append(text)
        log(text)

    own = run is not None and isinstance(trained.amplifier, TabulatedAmplifier)
    if own and design:
        raise RunError(f"{run} was trained on its own characterised amplifier ({trained.amplifier.describe()}); "
                       "--design applies to runs with ideal amplifiers: drop it")
    with output as o:
        t0 = time.perf_counter()
        model = trained.amplifier if own else characterise_amplifier(part, gains)
        model.save(o / "amplifier.json")
        both(f"## The amplifier: {model.describe()}")
        both()
        if own:
            both(f"the table {run} was trained on: {len(model.vin)} inputs x {len(model.iload)} load currents per gain "
                 "(a copy in OUT/amplifier.json)")
        else:
            both(f"ngspice DC sweeps of the closed loop in {time.perf_counter() - t0:.1f} s: {len(model.vin)} inputs x "
                 f"{len(model.iload)} load currents per gain (OUT/amplifier.json)")
        both()
        both("| gain | small-signal gain | output resistance | unloaded swing | input for 0 V out | quiescent power |")
        both("|---|---|---|---|---|---|")
        figures = []
        for g in model.gains:
            f = amplifier_figures(model, g)
            figures.append(f)
            both(f"| {g:g} | {f['small_signal_gain']:.5f} | {f['output_resistance']:.3g} ohm | {f['swing'][0]:+.3f} to "
                 f"{f['swing'][1]:+.3f} V | {1e6 * f['offset']:+.2f} uV | {1e6 * f['quiescent_power']:.1f} uW |")
        both()
        result = {"design": model.design, "figures": figures}
        if run is None:
            runs = {}
            for name, amp in (("run", str((o / "amplifier.json").resolve())), ("ideal", None)):
                c = TrainConfig(**{**cfg.__dict__, "amplifier": amp})
                clear_run(o / name)
                log(f"training digits {[2 * 64] + list(hidden) + [20]} for {epochs} epochs with "
                    f"{'the transistor amplifiers (their table)' if amp else 'ideal amplifiers'} -> {o / name}")
                runs[name] = train(c, o / name, progress=False, log=lambda *_: None)["test_accuracy"]
            cfg, _, net = load_run(o / "run")
            both(f"digits, native, {epochs} epochs, seed {seed}: test accuracy {runs['run']:.4f} with the transistor "
                 f"amplifiers (their table), {runs['ideal']:.4f} with ideal ones ({100 * (runs['run'] - runs['ideal']):+.2f} "
                 "points)")
            result["accuracy"] = {"transistor_table": runs["run"], "ideal": runs["ideal"]}
        else:
            net = trained.copy()
            if own:
                both(f"{run} was trained on this table; checked against the transistors it describes")
            else:
                both(f"{run} was trained with {net.amplifier.describe()}; checked with the characterised amplifiers "
                     "in their place")
                net.amplifier = model
        ds = load_for(cfg)
        x, labels = ds.x_test * cfg.input_scale, ds.y_test
        n = len(x) if not samples else min(samples, len(x))
        x, labels = x[:n], labels[:n]
        native = solve(net, x, tol=1e-12)
        circuit = NgspiceCircuit(net)
        volts, power, t0 = [], [], time.perf_counter()
        for i in range(0, n, SPICE_BATCH):
            eq = circuit.equilibrium(x[i:i + SPICE_BATCH])
            volts.append(eq.voltages)
            power.append(np.atleast_1d(eq.info["static_power"]))
            log(f"  ngspice, transistor-level amplifiers: {min(i + SPICE_BATCH, n)} of {n} test images "
                f"({time.perf_counter() - t0:.0f} s)")
        volts, power = np.vstack(volts), np.concatenate(power)
        pred_spice = volts @ circuit.readout.T
        same = int((pred_spice.argmax(1) == native.prediction.argmax(1)).sum())
        dev = np.abs(volts - native.voltages)
        out_dev = np.abs(pred_spice - native.prediction)
        acc_native = float(np.mean(native.prediction.argmax(1) == labels))
        acc_spice = float(np.mean(pred_spice.argmax(1) == labels))
        n_amps = sum(w.shape[0] for g, w in zip(net.gains, net.weights) if g != 1.0)
        both()
        both(f"## ngspice at transistor level against the native solver on the table ({n} test images)")
        both()
        both("| same class | node deviation, max | median | readout deviation, max | test accuracy, native | "
             "ngspice | static power (ngspice) | of it the amplifiers' quiescent |")
        both("|---|---|---|---|---|---|---|---|")
        both(f"| {same} of {n} ({100 * same / n:.2f}%) | {dev.max():.2e} V | {np.median(dev):.2e} V | "
             f"{out_dev.max():.2e} V | {acc_native:.4f} | {acc_spice:.4f} | {1e3 * np.median(power):.3f} mW | "
             f"{1e3 * n_amps * model.quiescent_power:.3f} mW ({n_amps} amplifiers) |")
        result["check"] = {"images": n, "same_class": same, "node_deviation_max": float(dev.max()),
                           "node_deviation_median": float(np.median(dev)), "readout_deviation_max": float(out_dev.max()),
                           "accuracy_native": acc_native, "accuracy_spice": acc_spice,
                           "static_power_median_w": float(np.median(power)), "amplifiers": n_amps,
                           "quiescent_power_w": n_amps * model.quiescent_power}
        o.write_text("transistors.md", "\n".join(lines) + "\n")
        o.write_text("transistors.json", json.dumps(result, indent=1))
    return result
