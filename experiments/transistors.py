"""``eqprop transistors``: amplifiers and clamps at transistor level, characterised, trained on, checked in ngspice.

1. Each part on a published process (``circuits.transistors``) is swept in ngspice at DC
   (``netlists.characterise``) into the table the native solver uses: the amplifier (a two-stage Miller op-amp in
   its non-inverting loop) as V_out(V_in, I_load) at the network's gains (OUT/amplifier.json), the clamp (two
   diode-connected p-MOSFETs biased past the rails) as one diode's i(vd) (OUT/clamp.json); each with a designer's
   figures.
2. Digits is trained natively on those tables (OUT/run), and beside it with ideal diodes and amplifiers from the
   same initialisation (OUT/ideal): what the transistors cost in accuracy. With ``--run RUN`` that run is checked
   instead: the tables it was trained on, or new ones in place of its ideal parts.
3. The test images are solved in ngspice with the parts as transistors (the netlist carries the designs, not the
   tables): the share of images given the same class as the native solver on the tables, the node voltages'
   deviation, and ngspice's static power with the amplifiers' supplies read from their sources.
"""
from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from eqprop.circuits import solve
from eqprop.circuits.transistors import TabulatedAmplifier, TabulatedDiode, clamp_design, opamp_design
from eqprop.learning.outputs import OutputDir

PARTS = ("amplifier", "clamp")
FILES = ["transistors.md", "transistors.json", "amplifier.json", "clamp.json", "run", "ideal"]
SPICE_BATCH = 20  # test images per ngspice sweep


def _own_clamp(net):
    diodes = {type(c.diode) for c in net.neurons if c is not None}
    return next((c.diode for c in net.neurons if c is not None and isinstance(c.diode, TabulatedDiode)), None) \
        if diodes == {TabulatedDiode} else None


def run_transistors(out, parts=PARTS, design: str = "", clamp: str = "", run=None, hidden=None, epochs=None,
                    seed=None, samples: int = 0, data=None, config=None, log=print) -> dict:
    """See the module notes. Training (without ``run``): digits 128-100-20 for 5 epochs, seed 0, or the recipe
    ``config`` (its amplifier and diodes replaced by the tables); ``hidden``, ``epochs``, ``seed`` override."""
    from eqprop.learning.data import load_for
    from eqprop.learning.rundir import RunError, clear_run
    from eqprop.learning.runs import load_circuit_run, load_run, train
    from eqprop.learning.trainer import TrainConfig
    from eqprop.netlists import NgspiceCircuit
    from eqprop.netlists.characterise import (VIN_FINE, amplifier_figures, characterise_amplifier, characterise_clamp,
                                              clamp_figures, input_grid)

    output = OutputDir(out, "transistors", FILES).check()  # refused before anything runs
    parts = tuple(dict.fromkeys(parts))
    if not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"--parts {' '.join(parts)}: give one or both of {', '.join(PARTS)}")
    amp_design, clamp_spec = opamp_design(design), clamp_design(clamp)
    if samples < 0:
        raise ValueError(f"--samples {samples}: give 0 (every test image) or more")
    trained = None
    if run is not None and config is not None:
        raise RunError("--run checks a trained run; --config trains a new one: give one of them")
    if run is not None:
        cfg, trained = load_circuit_run(run, "eqprop transistors", data)
        gains = [g for g in trained.gains if g != 1.0]
    else:
        if run is None and config is not None:
            from .recipes import load_recipe

            fields = dict(load_recipe(config).train)
        else:
            fields = {"dataset": "digits", "hidden": [100], "epochs": 5}
        fields.update({k: v for k, v in (("hidden", hidden and list(hidden)), ("epochs", epochs), ("seed", seed))
                       if v is not None})
        cfg = TrainConfig.from_dict(fields, where=config or "eqprop transistors").resolve().validate()
        gains = [g for g in cfg.gains() if g != 1.0]
    own_amp = trained is not None and isinstance(trained.amplifier, TabulatedAmplifier)
    own_clamp = _own_clamp(trained) if trained is not None else None
    for own, flag, given in ((own_amp, "--design", design), (own_clamp is not None, "--clamp", clamp)):
        if own and given:
            raise RunError(f"{run} was trained on its own characterised part; {flag} applies to runs with ideal "
                           f"parts: drop it")
    if "amplifier" in parts and not gains:
        raise RunError("the network has no amplifiers (every gain is 1): check --parts clamp only")
    lines: list = []

    def both(text=""):
        lines.append(text)
        log(text)

    result: dict = {"parts": list(parts)}
    with output as o:
        amp_model = clamp_model = None
        if "amplifier" in parts:
            t0 = time.perf_counter()
            # the fine input steps span the hidden nodes' range: their rails and as far past them again
            span = max(VIN_FINE, 2 * max(abs(v) for v in cfg.rails))
            amp_model = trained.amplifier if own_amp else characterise_amplifier(amp_design, gains,
                                                                                 vin=input_grid(vin_fine=span))
            amp_model.save(o / "amplifier.json")
            both(f"## The amplifier: {amp_model.describe()}")
            both()
            both(f"the table {run} was trained on (a copy in OUT/amplifier.json)" if own_amp else
                 f"ngspice DC sweeps of the closed loop in {time.perf_counter() - t0:.1f} s: {len(amp_model.vin)} inputs "
                 f"x {len(amp_model.iload)} load currents per gain, every point's last two solves within "
                 f"{amp_model.settled:.1e} V (OUT/amplifier.json)")
            both()
            both("| gain | small-signal gain | output resistance | unloaded swing | input for 0 V out | quiescent power |")
            both("|---|---|---|---|---|---|")
            figures = []
            for g in amp_model.gains:
                f = amplifier_figures(amp_model, g)
                figures.append(f)
                both(f"| {g:g} | {f['small_signal_gain']:.5f} | {f['output_resistance']:.3g} ohm | {f['swing'][0]:+.3f} "
                     f"to {f['swing'][1]:+.3f} V | {1e6 * f['offset']:+.2f} uV | {1e6 * f['quiescent_power']:.1f} uW |")
            both()
            result["amplifier"] = {"design": amp_model.design, "figures": figures}
        if "clamp" in parts:
            t0 = time.perf_counter()
            clamp_model = own_clamp if own_clamp is not None else characterise_clamp(clamp_spec)
            clamp_model.save(o / "clamp.json")
            f = clamp_figures(clamp_model)
            both(f"## The clamp: {clamp_model.describe()}")
            both()
            both(f"the table {run} was trained on (a copy in OUT/clamp.json)" if own_clamp is not None else
                 f"ngspice DC sweep of one diode in {time.perf_counter() - t0:.1f} s: {len(clamp_model.vd)} points "
                 "(OUT/clamp.json)")
            both()
            both("| current 50 mV inside the rail | at the rail | 50 mV past | 100 mV past | past the rail at 1 uA | "
                 "conductance 50 mV past |")
            both("|---|---|---|---|---|---|")
            both(f"| {f['leak']:.3g} A | {f['at_rail']:.3g} A | {f['past_50mv']:.3g} A | {f['past_100mv']:.3g} A | "
                 f"{1e3 * f['knee_1ua']:.1f} mV | {f['g_50mv']:.3g} S |")
            both()
            result["clamp"] = {"design": clamp_model.design, "figures": f}
        if run is None:
            runs = {}
            parts_cfg = {"amplifier": str((o / "amplifier.json").resolve()) if amp_model else None,
                         "diode": str((o / "clamp.json").resolve()) if clamp_model else cfg.diode}
            for name, over in (("run", parts_cfg), ("ideal", {"amplifier": None, "diode": cfg.diode})):
                c = TrainConfig(**{**cfg.__dict__, **over})
                clear_run(o / name)
                log(f"training {cfg.dataset} {list(cfg.hidden)} for {cfg.epochs} epochs with "
                    f"{'the transistor parts (their tables)' if name == 'run' else 'ideal parts'} -> {o / name}")
                runs[name] = train(c, o / name, progress=False, log=lambda *_: None)["test_accuracy"]
            cfg, _, net = load_run(o / "run")
            what = " and ".join({"amplifier": "amplifiers", "clamp": "clamps"}[p] for p in parts)
            both(f"{cfg.dataset}, {cfg.backend}, hidden {list(cfg.hidden)}, {cfg.epochs} epochs, seed {cfg.seed}, rails "
                 f"{list(cfg.rails)} V, input scale {cfg.input_scale:g}{f' ({config})' if config else ''}: test "
                 f"accuracy {runs['run']:.4f} with the transistor {what} (their tables), {runs['ideal']:.4f} with ideal "
                 f"ones ({100 * (runs['run'] - runs['ideal']):+.2f} points)")
            result["accuracy"] = {"transistor_tables": runs["run"], "ideal": runs["ideal"]}
        else:
            net = trained.copy()
            if amp_model is not None and not own_amp:
                both(f"{run}'s amplifiers ({net.amplifier.describe()}) replaced by the characterised ones")
                net.amplifier = amp_model
            if clamp_model is not None and own_clamp is None:
                both(f"{run}'s clamps replaced by the characterised ones")
                net.neurons = [c if c is None else dataclasses.replace(c, diode=clamp_model) for c in net.neurons]
            both(f"{run} checked against the transistors of its parts")
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
            log(f"  ngspice, transistor-level parts: {min(i + SPICE_BATCH, n)} of {n} test images "
                f"({time.perf_counter() - t0:.0f} s)")
        volts, power = np.vstack(volts), np.concatenate(power)
        pred_spice = volts @ circuit.readout.T
        same = int((pred_spice.argmax(1) == native.prediction.argmax(1)).sum())
        dev = np.abs(volts - native.voltages)
        out_dev = np.abs(pred_spice - native.prediction)
        acc_native = float(np.mean(native.prediction.argmax(1) == labels))
        acc_spice = float(np.mean(pred_spice.argmax(1) == labels))
        n_amps = sum(w.shape[0] for g, w in zip(net.gains, net.weights) if g != 1.0) if amp_model else 0
        quiescent = n_amps * amp_model.quiescent_power if amp_model else 0.0
        both()
        both(f"## ngspice at transistor level against the native solver on the tables ({n} test images)")
        both()
        both("| same class | node deviation, max | median | readout deviation, max | test accuracy, native | "
             "ngspice | static power (ngspice) | of it the amplifiers' quiescent |")
        both("|---|---|---|---|---|---|---|---|")
        both(f"| {same} of {n} ({100 * same / n:.2f}%) | {dev.max():.2e} V | {np.median(dev):.2e} V | "
             f"{out_dev.max():.2e} V | {acc_native:.4f} | {acc_spice:.4f} | {1e3 * np.median(power):.4g} mW | "
             f"{1e3 * quiescent:.4g} mW ({n_amps} amplifiers) |")
        result["check"] = {"images": n, "same_class": same, "node_deviation_max": float(dev.max()),
                           "node_deviation_median": float(np.median(dev)), "readout_deviation_max": float(out_dev.max()),
                           "accuracy_native": acc_native, "accuracy_spice": acc_spice,
                           "static_power_median_w": float(np.median(power)), "amplifiers": n_amps,
                           "quiescent_power_w": quiescent}
        o.write_text("transistors.md", "\n".join(lines) + "\n")
        o.write_text("transistors.json", json.dumps(result, indent=1))
    return result
