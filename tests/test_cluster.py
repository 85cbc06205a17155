"""Ray: ngspice actors give what the local pool gives, survive a killed actor, and sweeps run on it.

One local Ray instance (2 CPUs) for the module; every test is bounded by pytest-timeout."""
import json
import os
import signal

import numpy as np
import pytest

from eqprop.circuits import ShockleyDiode, layered
from eqprop.netlists import SpiceError, SpicePool
from eqprop.netlists.ray_pool import RaySpicePool, connect

pytestmark = [pytest.mark.spice, pytest.mark.ray, pytest.mark.xdist_group("ray")]  # one Ray instance at a time


@pytest.fixture(scope="module")
def ray_local():
    ray = connect("ray", num_cpus=2)
    yield ray
    ray.shutdown()


def case():
    net = layered([24, 12, 10], diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=4)
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (30, 12))
    y = np.full((30, 5), -0.05)
    y[np.arange(30), rng.integers(0, 5, 30)] = 0.05
    return net, x, y


def test_ray_actors_equal_the_local_pool_bit_for_bit(ray_local):
    net, x, y = case()
    with SpicePool(net, workers=2, chunk=8) as pool:
        free, nudged = pool.equilibrium(x), pool.equilibrium(x, y, 2e-8)
    with RaySpicePool(net, workers=2, chunk=8) as rpool:
        rfree, rnudged = rpool.equilibrium(x), rpool.equilibrium(x, y, 2e-8)
        np.testing.assert_array_equal(rfree.voltages, free.voltages)
        np.testing.assert_array_equal(rnudged.voltages, nudged.voltages)
        # a training step: actors reload the new conductances once, then agree again
        changed = net.copy()
        changed.weights[0] *= 1.1
        pool2 = SpicePool(changed, workers=2, chunk=8)  # the same chunks: each sweep warm-starts its samples
        rpool.load(changed)
        expected = pool2.equilibrium(x).voltages
        np.testing.assert_array_equal(rpool.equilibrium(x).voltages, expected)
        pool2.close()
        # a deadline reaches every actor's analyses: past it the batch fails naming it; the actors go on
        rpool.deadline = 1e-6
        with pytest.raises(SpiceError, match="deadline of 1e-06 s"):
            rpool.equilibrium(x)
        rpool.deadline = None
        np.testing.assert_array_equal(rpool.equilibrium(x).voltages, expected)


def test_a_killed_ray_actor_is_replaced_and_no_sample_is_lost(ray_local):
    net, x, _ = case()
    with RaySpicePool(net, workers=2, chunk=5) as rpool:
        before = rpool.equilibrium(x).voltages
        pids = rpool.actor_pids()
        os.kill(pids[0], signal.SIGKILL)
        after = rpool.equilibrium(x)
        assert after.voltages.shape == before.shape
        np.testing.assert_array_equal(after.voltages, before)
        assert pids[0] not in rpool.actor_pids()


def test_sweep_on_ray_equals_the_local_sweep(ray_local, tmp_path):
    """Sweep points on Ray equal the local ones; the points here are dies (the op-amps' offsets drawn per seed),
    each trained on: many dies as sweep points."""
    from eqprop.experiments.sweep import run_sweep

    spec = tmp_path / "s.toml"
    spec.write_text('[base]\ndataset = "digits"\nepochs = 1\nhidden = [16]\nn_train = 120\nn_test = 60\n'
                    '[grid]\namplifier = ["a0=1e3 offset_sigma=0.02 seed=0", "a0=1e3 offset_sigma=0.02 seed=1"]\n'
                    'device = ["ideal", "noisy"]\n')
    local = run_sweep(spec, out=tmp_path / "local", log=lambda *_: None)
    remote = run_sweep(spec, out=tmp_path / "ray", cluster="ray", log=lambda *_: None)
    assert [r["status"] for r in local] == ["done"] * 4
    assert [(r["point"], r["test_loss"]) for r in remote] == [(r["point"], r["test_loss"]) for r in local]
    assert local[0]["test_loss"] != local[2]["test_loss"]  # die 0 and die 1 (the same device) are two circuits
    assert (tmp_path / "ray" / "summary.md").read_text().count("| done |") == 4
    again = run_sweep(spec, out=tmp_path / "local", log=lambda *_: None)  # finished points are read back
    assert [r["status"] for r in again] == ["done (earlier)"] * 4


def test_dies_on_ray_equal_the_local_dies(ray_local, tmp_path):
    """``eqprop dies --cluster``: each die a Ray task, drawn from its number: the same table as the local loop."""
    from eqprop.experiments.cli import main

    run = tmp_path / "run"
    assert main(["train", "--hidden", "16", "--epochs", "1", "--n-train", "150", "--n-test", "60", "--out", str(run),
                 "--no-progress"]) == 0
    tables = []
    for name, extra in (("local", []), ("ray", ["--cluster", "ray"])):
        out = tmp_path / name
        assert main(["dies", str(run), "--dies", "3", "--conductance", "0.2", "--amplifier-offset", "0.02",
                     "--out", str(out)] + extra) == 0
        tables.append(json.loads((out / "dies.json").read_text())["dies"])
    assert tables[0] == tables[1] and len({d["test_accuracy"] for d in tables[0]}) > 1
