"""Fault tests: a training run SIGKILLed anywhere (before it writes, mid-epoch, mid-checkpoint, while
plotting) and resumed with `eqprop train --resume` ends bit for bit where an uninterrupted run ends."""
import json
import os

import numpy as np
import pytest

from fault_injection import assert_same_run, final_state, train_with_kills

# Small enough for seconds, long enough (6 epochs of 25 steps) for kills to land inside epochs: the kills
# below need 4 epochs before the last one.
ARGS = "--hidden 32 --epochs 6 --n-train 500 --n-test 100 --batch-size 20 --seed 3".split()


@pytest.mark.timeout(300)
# memristor: the same kills with a device state to restore; in make test-all (make test resumes a memristor
# run killed in-process: test_learning_runs.py::test_killed_run_resumes_to_identical_conductances)
@pytest.mark.parametrize("device", ["ideal", pytest.param("memristor", marks=pytest.mark.slow)])
def test_sigkilled_run_resumes_to_the_same_conductances_bit_for_bit(tmp_path, device):
    args = ARGS + ["--device", device]
    assert train_with_kills(args, tmp_path / "whole", []) == []
    # an epoch's seconds on this machine (a fast solver makes it a few hundredths of a second): the kills
    # inside epochs wait a fraction of it, so they land inside the next epoch however fast the machine is
    epoch = float(np.median([h["seconds"] for h in json.loads((tmp_path / "whole" / "metrics.json").read_text())]))
    rng = np.random.default_rng(7)
    # Where each attempt is killed: (epochs it must checkpoint first, then a delay in seconds).
    # In the start-up (most likely before anything is written), in the first epoch (a fraction of an epoch
    # after config.json: a delay counted from the process start landed in epoch 5 on a machine that starts
    # faster), mid-epoch after 1, 2 and 1 new epochs, and after the last epoch's checkpoint (in the plots).
    triggers = [(0, rng.uniform(0.0, 0.3)), ("config", rng.uniform(0.0, 0.5) * epoch)] + \
               [(k, rng.uniform(0.0, 0.5) * epoch) for k in (1, 2, 1)] + [("end", rng.uniform(0.0, 0.5))]
    kills = train_with_kills(args, tmp_path / "killed", triggers)
    assert_same_run(final_state(tmp_path / "whole"), final_state(tmp_path / "killed"))
    landed = [k.state for k in kills]
    # The run was really cut after checkpoints (resumed from one), not only before it wrote anything.
    assert sum("checkpointed" in s for s in landed) >= 3, landed
    assert not list((tmp_path / "killed").glob("*.tmp")), "a stray temp file of a killed write was left behind"


@pytest.mark.timeout(300)
# in make test-all: make test SIGKILLs runs across epochs above and resumes runs stopped mid-epoch, a checkpoint
# after every step, in process (test_learning_runs.py::test_killed_run_resumes_to_identical_conductances)
@pytest.mark.slow
def test_checkpoints_inside_epochs_resume_mid_epoch_bit_for_bit(tmp_path):
    # Two long epochs, a checkpoint after every step: each kill loses at most a step, not an epoch.
    args = "--hidden 16 --epochs 2 --n-train 240 --n-test 100 --batch-size 5 --seed 5".split()
    assert train_with_kills(args + ["--checkpoint-every", "1e9"], tmp_path / "whole", []) == []
    # the delays are fractions of an epoch of the uninterrupted run (whose epochs, without a checkpoint per step,
    # are the shorter): in seconds, a faster solver moved the last kill past the end of the run
    epoch = float(np.median([h["seconds"] for h in json.loads((tmp_path / "whole" / "metrics.json").read_text())]))
    rng = np.random.default_rng(11)
    kills = train_with_kills(args + ["--checkpoint-every", "0"], tmp_path / "killed",
                             [("checkpoint", rng.uniform(0.0, 0.4) * epoch), ("checkpoint", rng.uniform(0.0, 0.4) * epoch),
                              (1, rng.uniform(0.1, 0.3) * epoch)])
    assert_same_run(final_state(tmp_path / "whole"), final_state(tmp_path / "killed"))
    assert sum(" step " in k.state for k in kills) >= 2, [k.state for k in kills]


def test_what_a_kill_inside_a_write_leaves_is_cleaned_and_metrics_catch_up(tmp_path):
    from eqprop.learning.runs import train
    from eqprop.learning.trainer import TrainConfig

    cfg = TrainConfig(dataset="digits", hidden=[16], epochs=2, n_train=200, n_test=50, batch_size=50)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json.k2j9x_q1.tmp").write_bytes(b'{"half')  # a kill inside the first atomic write
    train(cfg, run, progress=False, log=lambda *_: None)  # the directory holds nothing of value: a new run starts
    assert not list(run.glob("*.tmp"))
    metrics = (run / "metrics.json").read_text()
    (run / "metrics.json").unlink()  # killed after the last checkpoint, before the metrics were rewritten
    (run / "checkpoint.npz.0a1b2c3d.tmp").write_bytes(b"PK\x03")
    train(cfg, run, resume=True, progress=False, log=lambda *_: None)
    assert (run / "metrics.json").read_text() == metrics
    assert not list(run.glob("*.tmp"))
    (run / "notes.tmp").write_text("mine")  # not something a run writes: left alone
    train(cfg, run, resume=True, progress=False, log=lambda *_: None)
    assert (run / "notes.tmp").read_text() == "mine"
    umask = os.umask(0)
    os.umask(umask)
    assert (run / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes, not 0600
