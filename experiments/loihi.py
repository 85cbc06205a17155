"""``eqprop loihi RUN``: a trained run's network on the bit-accurate Loihi path, against native.

For each threshold (graded sigma-delta threshold, or binary spike quantum) it runs the test set through
the batched emulator and reports test accuracy beside native's, the largest equilibrium error against
the native equilibria with the derived bound (``neuromorphic.loihi.bound``, on the first ``bound_samples``
samples), spikes, synaptic operations and time steps per inference, the Loihi energy estimate and the
peak width of every state. ``lava`` samples also run through the Lava processes themselves: they must
equal the emulator bit for bit, and their wall time gives Lava's throughput.
"""
from __future__ import annotations

import json
import time

import numpy as np

from eqprop.backends.native import NativeBackend
from eqprop.learning.data import load_for
from eqprop.learning.runs import load_circuit_run
from eqprop.neuromorphic.loihi.bound import error_bound
from eqprop.neuromorphic.loihi.emulator import emulate
from eqprop.neuromorphic.loihi.energy import per_inference
from eqprop.neuromorphic.loihi.map import build_program, check_network, range_violations
from eqprop.neuromorphic.loihi.microcode import bits_needed, check_widths


def _batches(n, size):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def loihi_rows(net, x, labels, thresholds, binary=False, steps=64, alpha=0.5, bound_samples=50, batch=500,
               log=print, leak="reciprocal") -> tuple:
    native = NativeBackend(net, tol=1e-12)
    sources = net.encode_inputs(x)
    ref = [[] for _ in net.free_sizes]
    for sl in _batches(len(x), batch):
        for c, v in enumerate(native.settle(x[sl]).layers):
            ref[c].append(v)
    ref = [np.vstack(r) for r in ref]
    R = net.readout_matrix
    native_acc = float(((ref[-1] @ R.T).argmax(1) == labels).mean())
    v_in = max(1.0, float(np.abs(sources).max()))
    rows = []
    for th in thresholds:
        prog = build_program(net, v_in, alpha, th, binary, leak=leak)
        t0 = time.perf_counter()
        states, spikes, last, active, peaks = [[] for _ in net.free_sizes], [], [], [], {}
        for sl in _batches(len(x), batch):
            r = emulate(prog, prog.sources_int(sources[sl]), None, steps, 1, peaks=True)
            for c, s in enumerate(r["states"]):
                states[c].append(s[0])
            spikes.append(r["spikes"][0])
            last.append(r["last_spike"][0])
            active.append(r["active_steps"][0])
            for k, m in r["peaks"].items():
                peaks[k] = max(peaks.get(k, 0), m)
        seconds = time.perf_counter() - t0
        check_widths(peaks)
        ranges = range_violations(prog, peaks.get("a_in"))
        v = [prog.volts(np.vstack(s)) for s in states]
        spikes, last = np.vstack(spikes), np.concatenate(last)
        err = np.max(np.hstack([np.abs(a - b) for a, b in zip(v, ref)]), axis=1)
        nb = min(bound_samples, len(x))
        bound = error_bound(prog, sources[:nb], [r_[:nb] for r_ in ref], 0.0, np.max(active, axis=0)[None])
        quiet = last[:nb] < steps
        ratio = bound[quiet] / np.maximum(err[:nb][quiet], prog.lsb)  # how far above the measured error
        tight = (float(np.median(ratio)), float(ratio.max())) if quiet.any() else (None, None)
        fan = np.array(prog.synapses_out(), dtype=float)
        synops = float((spikes * fan).sum(1).mean())
        n_spikes = float(spikes.sum(1).mean())
        updates = float(sum(net.free_sizes)) * (prog.pre_steps + steps)
        energy = per_inference(n_spikes, synops, updates)
        row = {"threshold_v": prog.theta_volts, "threshold_lsb": prog.theta, "spikes": "binary" if binary else "graded",
               "accuracy": float(((v[-1] @ R.T).argmax(1) == labels).mean()), "native_accuracy": native_acc,
               "max_error_v": float(err.max()), "bound_checked_samples": nb,
               "max_error_first_samples_v": float(err[:nb].max()), "bound_min_v": float(bound.min()),
               "bound_violations": int(((err[:nb] > bound) & (last[:nb] < steps)).sum()),  # it holds at silence
               "bound_silent_samples": int((last[:nb] < steps).sum()),
               # a sample still spiking at the end is covered by no bound: a failure of its own
               "bound_failures": int(((err[:nb] > bound) | (last[:nb] >= steps)).sum()),
               "bound_tightness_median": tight[0], "bound_tightness_worst": tight[1],
               "spikes_per_inference": n_spikes, "synops_per_inference": synops,
               "silent_after_steps_mean": float(last[last < steps].mean()) if (last < steps).any() else None,
               "not_silent": float((last >= steps).mean()),
               "time_steps": prog.pre_steps + steps, "leak": leak, "energy_nj": energy["energy_nj"], "time_us_serial": energy["time_us_serial"],
               "peak_bits": {k: bits_needed(m) for k, m in peaks.items()}, "range_violations": ranges, "emulator_samples_per_s": len(x) / seconds}
        rows.append(row)
        silent = row["bound_silent_samples"]
        quiet_all = int((last < steps).sum())
        after = ("none fell silent" if row["silent_after_steps_mean"] is None else
                 f"silent after {row['silent_after_steps_mean']:.1f} steps" if quiet_all == len(last) else
                 f"{quiet_all} of {len(last)} fell silent, after {row['silent_after_steps_mean']:.1f} steps")
        fits = (f"{row['bound_failures']} of {nb} failed (over it: {row['bound_violations']} of the {silent} silent; "
                f"not silent: {nb - silent})")
        if tight[0] is not None:
            fits += f", bound/error median {tight[0]:.1f}x, worst {tight[1]:.1f}x"
        log(f"threshold {prog.theta_volts:.3g} V: accuracy {row['accuracy']:.2%} (native {native_acc:.2%}), "
            f"max error {row['max_error_v']:.2e} V (bound >= {row['bound_min_v']:.2e} V, which holds once a sample "
            f"is silent: {fits}), {n_spikes:.0f} spikes, "
            f"{synops:.0f} synops per inference, {after}, {energy['energy_nj']:.1f} nJ")
        if ranges:
            log(f"warning: {len(ranges)} mapped quantities are outside Loihi's documented ranges (docs/loihi.md, "
                f"'Ranges'): {'; '.join(ranges[:3])}{'; ...' if len(ranges) > 3 else ''}")
        spiking = len(last) - quiet_all
        if spiking:  # a count: one sample in 360 is "0%" at the percentage's precision
            log(f"warning: {spiking} of the {len(last)} samples ({row['not_silent']:.1%}) were still spiking after "
                f"{steps} steps: their states had not settled and no bound covers them; raise --time-steps (or the "
                f"threshold)")
    return rows, prog


def lava_check(net, x, threshold, binary, steps, alpha, samples, timeout=1800.0, leak="reciprocal") -> dict:
    """``samples`` test samples through the Lava processes: bit-exact with the emulator? and samples/s."""
    from eqprop.neuromorphic import LavaSession

    sources = net.encode_inputs(x[:samples])
    prog = build_program(net, max(1.0, float(np.abs(net.encode_inputs(x)).max())), alpha, threshold, binary,
                         leak=leak)
    s_int = prog.sources_int(sources)
    emu = emulate(prog, s_int, None, steps, 1)
    with LavaSession(timeout=timeout) as session:
        t0 = time.perf_counter()
        got = session.loihi(prog, s_int, None, steps, 1, record_hidden=True)
        seconds = time.perf_counter() - t0
    equal = all(np.array_equal(a, b) for a, b in zip(emu["states"], got["states"])) and \
        np.array_equal(emu["spikes"], got["spikes"])
    return {"lava_samples": samples, "bit_exact": bool(equal), "lava_seconds": seconds,
            "lava_samples_per_s": samples / seconds, "lava_time_steps": got["time_steps"]}


def loihi_report(run_dir, thresholds=(1e-4,), binary=False, steps=64, alpha=0.5, n_test=None, lava=0, out=None,
                 log=print, leak="reciprocal") -> dict:
    from eqprop.learning.outputs import OutputDir

    output = OutputDir(out, "loihi", ("loihi.json", "loihi_thresholds.png")).check() if out is not None else None
    cfg, net = load_circuit_run(run_dir, "the Loihi path", check=False)
    check_network(net)  # what the Loihi path cannot map is refused before anything is printed or loaded
    ds = load_for(cfg, n_train=None, n_test=n_test)
    x, labels = ds.x_test * cfg.input_scale, ds.y_test
    log(f"{run_dir}: {cfg.dataset} {'-'.join(map(str, net.sizes))}, {len(x)} test samples, "
        f"{'binary' if binary else 'graded'} spikes, {steps} steps, alpha {alpha}, {leak} leak")
    rows, _ = loihi_rows(net, x, labels, thresholds, binary, steps, alpha, log=log, leak=leak)
    report = {"run": str(run_dir), "dataset": cfg.dataset, "sizes": list(net.sizes), "n_test": len(x),
              "steps": steps, "alpha": alpha, "leak": leak, "rows": rows}
    if lava:
        report["lava"] = lava_check(net, x, thresholds[0], binary, steps, alpha, min(lava, len(x)), leak=leak)
        lv = report["lava"]
        log(f"Lava processes, {lv['lava_samples']} samples: bit-exact with the emulator: {lv['bit_exact']}; "
            f"{lv['lava_samples_per_s']:.2f} samples/s ({lv['lava_seconds']:.1f} s)")
        if not lv["bit_exact"]:
            raise RuntimeError("the Lava run and the emulator differ: the emulator's figures do not stand for Lava")
    if output is not None:
        with output:
            output.write_text("loihi.json", json.dumps(report, indent=1))
            if len(rows) > 1:
                _plot(rows, output, "loihi_thresholds.png")
    return report


def _plot(rows, output, name) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    s = [r["spikes_per_inference"] for r in rows]
    ax[0].plot(s, [100 * r["accuracy"] for r in rows], "o-", label="Loihi path")
    ax[0].axhline(100 * rows[0]["native_accuracy"], color="k", ls="--", label="native")
    ax[0].set_xlabel("spikes per inference")
    ax[0].set_ylabel("test accuracy (%)")
    ax[0].legend()
    ax[1].loglog(s, [r["max_error_v"] for r in rows], "o-")
    ax[1].set_xlabel("spikes per inference")
    ax[1].set_ylabel("largest equilibrium error vs native (V)")
    for r in rows:
        ax[1].annotate(f"{r['threshold_v']:.0e} V", (r["spikes_per_inference"], r["max_error_v"]), fontsize=7)
    fig.tight_layout()
    output.savefig(name, fig, dpi=120)
    plt.close(fig)
