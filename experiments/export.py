"""``eqprop netlist``: a trained run's network as an ngspice netlist, with test samples at its inputs.

The deck states how far ngspice's operating point is from the trained model (the native solver) for
exactly these samples, measured when it is written: ideal diodes have no SPICE element and are written
as their stand-in (``IdealDiode.spice_stand_in``).
"""
from __future__ import annotations


import numpy as np

from eqprop.backends import ResistiveBackend
from eqprop.circuits import solve
from eqprop.learning.data import load_for
from eqprop.learning.outputs import claim_file
from eqprop.learning.rundir import atomic_write, load_checkpoint, load_config


class ExportError(ValueError):
    """A netlist that cannot be written as asked."""


def export_netlist(run, out, split="test", sample=0, count=1, beta=0.0, nudge="current", log=print,
                   force=False, wire=None) -> dict:
    """``force``: replace an existing file at ``out`` (refused otherwise, before anything is loaded); ``wire``:
    ohms per crossbar wire segment, the network laid out as crossbars (``circuits.parasitics.wired``)."""
    out = claim_file(out, force=force)
    if count < 1 or sample < 0:
        raise ExportError(f"--sample must be >= 0 and --count >= 1, got --sample {sample} --count {count}")
    cfg = load_config(run)
    net, state, _ = load_checkpoint(run, cfg)
    if not hasattr(net, "neurons"):
        raise ExportError(f"{run} is a {cfg.backend} run: a digital model, not a circuit; export a circuit run "
                          "(native, spice, lava)")
    ds = load_for(cfg)
    x_all = ds.x_test if split == "test" else ds.x_train
    y_all = ds.y_test if split == "test" else ds.y_train
    if sample + count > len(x_all):
        raise ExportError(f"--sample {sample} --count {count} is past the {len(x_all)} {split} samples")
    idx = list(range(sample, sample + count))
    x = x_all[idx] * cfg.input_scale
    y = ResistiveBackend.targets(y_all[idx], ds.n_classes, cfg.target_amplitude)
    beta_abs = beta * state["beta_abs"] / cfg.beta if beta else 0.0
    laid_out = ""
    if wire is not None:
        from eqprop.circuits import NetworkError
        from eqprop.circuits.parasitics import wired

        try:
            net = wired(net, wire)
        except NetworkError as e:
            raise ExportError(f"--wire: {e}") from None
        laid_out = f"laid out as crossbars with {wire:g} ohms per wire segment\n"
    deviation = measured_deviation(net, x, y if beta_abs else None, beta_abs)
    from eqprop.netlists import to_netlist

    title = (f"eqprop-hw run {run}: {split} samples {idx[0]}..{idx[-1]} (labels {y_all[idx].tolist()})\n"
             + laid_out + deviation["text"])
    text = to_netlist(net, x, y if beta_abs else None, beta_abs, nudge=nudge, title=title)
    try:
        atomic_write(claim_file(out, force=force), text.text.encode())  # checked again: it may have appeared since
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror}") from None
    log(f"wrote {out}: {len(text.free_nodes)} free nodes, {text.text.count(chr(10) + 'R_')} resistors, "
        f"{len(idx)} sample(s); {deviation['text']}")
    log(f"run it by hand with: ngspice -b {out}")
    return deviation


def measured_deviation(net, x, y, beta) -> dict:
    """ngspice (this very deck's circuit) against the native solver, for these samples."""
    native = solve(net, x, y, beta)
    try:
        from eqprop.netlists import NgspiceCircuit

        spice = NgspiceCircuit(net).equilibrium(x, y, beta)
    except Exception as e:  # ngspice missing or failing: the deck is still written, the comment says so
        return {"text": f"deviation from the trained model not measured ({type(e).__name__}: {e})"[:300]}
    dv = float(np.abs(spice.voltages - native.voltages).max())
    dp = float(np.abs(spice.prediction - native.prediction).max())
    same = int((spice.prediction.argmax(1) == native.prediction.argmax(1)).sum())
    return {"max_node_v": dv, "max_output_v": dp, "same_predictions": same, "samples": len(x),
            "text": f"measured against the trained model (native solver): largest node deviation {dv:.2e} V, "
                    f"output {dp:.2e} V; predicted class the same for {same}/{len(x)} samples"}
