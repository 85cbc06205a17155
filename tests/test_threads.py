"""The threading policy (circuits/threads.py): a solve never keeps more threads running than cores."""
import os
import subprocess
import sys
import textwrap

import pytest

from eqprop.circuits import threads

CORE_WAITS = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from eqprop.circuits import layered, solve, threads

    if sys.argv[1] == "without-policy":  # the check of the check: each chunk thread's BLAS keeps its own threads
        import contextlib
        threads.blas_threads = lambda n: contextlib.nullcontext()

    def schedstat():
        out = {}
        for t in os.listdir("/proc/self/task"):
            try:
                on_cpu, waiting, _ = map(int, open(f"/proc/self/task/{t}/schedstat").read().split())
            except OSError:
                continue
            out[t] = (on_cpu, waiting)  # nanoseconds running, nanoseconds ready but waiting for a core
        return out

    net = layered([1568, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (128 * threads.cores(), 784))  # split over every core
    solve(net, x)
    before, t0 = schedstat(), time.perf_counter()
    while time.perf_counter() - t0 < 2:
        solve(net, x)
    after, wall = schedstat(), time.perf_counter() - t0
    d = {t: [(a - b) / 1e9 / wall for a, b in zip(after[t], before.get(t, (0, 0)))] for t in after}
    running = sum(v[0] for v in d.values())
    waiting = sum(v[1] for v in d.values())
    print(threads.cores(), f"{running:.3f}", f"{waiting:.3f}")
""")


def core_waits(mode="with-policy"):
    done = subprocess.run([sys.executable, "-c", CORE_WAITS, mode], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")})
    assert done.returncode == 0, done.stderr[-2000:]
    cores, running, waiting = done.stdout.split()
    return int(cores), float(running), float(waiting)


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="reads the scheduler's statistics from Linux's /proc")
def test_a_large_batch_solve_keeps_no_more_threads_running_than_cores():
    """During 2 s of solves of a batch split over every core, the scheduler's own account of each thread
    (/proc/self/task/*/schedstat: time on a core, time ready but waiting for one): their sum over the process's
    threads, over the wall time, is how many of its threads were runnable on average. With the policy that is at
    most the cores (measured on 2 cores beside a 2-thread training: 1.55-2.06; alone 1.57). Time waiting alone
    would not do: another process's load makes these threads wait too (0.6-1.07 of the time beside that training,
    0.006 alone). Without the policy each chunk thread's BLAS runs threads of its own beside the chunk threads
    (alone: 2.45-2.58 runnable, waiting 0.59-0.62 of the time): the second run, on an otherwise idle machine,
    checks that the measure sees them."""
    cores, running, waiting = core_waits()
    runnable = running + waiting
    assert runnable <= cores + 0.2, (f"{runnable:.2f} threads runnable on average on {cores} cores (running "
                                     f"{running:.2f}, waiting {waiting:.2f})")
    # The contrast is measured on 2 cores (this machine's and CI's) with nothing else running, which the first run
    # shows: its threads waited for a core less than a quarter of the time. Beside other load the measure still
    # bounds the policy (above), but the runs without it come closer (2.3 against 1.9-2.1) than a check can trust.
    if cores == 2 and waiting < 0.25:
        cores, running, unlimited = core_waits("without-policy")
        assert running + unlimited > cores + 0.25, (
            f"without the policy {running + unlimited:.2f} threads were runnable, with it {runnable:.2f}: the "
            "measure is blind")


def test_the_override_and_its_refusals(monkeypatch):
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.cores() == 1 and threads.chunks(4096) == 1
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.chunks(4096) == 3 and threads.chunks(200) == 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(threads.ENV, bad)
        with pytest.raises(ValueError, match=threads.ENV):
            threads.cores()
    monkeypatch.delenv(threads.ENV)
    assert threads.cores() == len(os.sched_getaffinity(0))
    assert "cores" in threads.describe()


def test_run_keeps_the_order_and_every_range_has_finished_when_it_returns_or_raises():
    """``threads.run``: the first range in the calling thread, the rest in the pool; results in the ranges' order;
    when the calling thread's range raises, the others (which write into the caller's arrays) have finished."""
    import threading
    import time

    assert threads.ranges(10, 3) == [(0, 3), (3, 6), (6, 10)] and threads.ranges(2, 5) == [(0, 1), (1, 2)]
    caller = threading.get_ident()
    where = {}

    def fn(b):
        where[b] = threading.get_ident()
        return b[0]

    assert threads.run([(0, 1), (1, 2), (2, 3)], fn) == [0, 1, 2]
    assert where[(0, 1)] == caller and where[(1, 2)] != caller
    done = []

    def slow_or_fail(b):
        if b[0] == 0:
            raise ValueError("first range")
        time.sleep(0.2)
        done.append(b)

    with pytest.raises(ValueError, match="first range"):
        threads.run([(0, 1), (1, 2)], slow_or_fail)
    assert done == [(1, 2)]


FAULTS = textwrap.dedent("""
    import resource
    import numpy as np
    from eqprop.backends.native import NativeBackend
    from eqprop.circuits import memory
    from eqprop.learning.programming import preset
    from eqprop.learning.runs import build_network, resolved
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig

    cfg = resolved(TrainConfig(dataset="mnist", hidden=[400], batch_size=512))
    rng = np.random.default_rng(0)
    x, labels = rng.uniform(0, 1, (512, 784)), rng.integers(0, 10, 512)
    net = build_network(cfg, 784, 10)
    g_max = 2 * float(net.weights[0].max())
    trainer = EqPropTrainer(NativeBackend(net, tol=cfg.tol), cfg, preset(cfg.device, g_max), 10)
    for _ in range(5):
        trainer.step(x, labels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        trainer.step(x, labels)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, memory.describe())
""")


def page_faults(env):
    done = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if k != "EQPROP_MALLOC"}, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    faults, state = done.stdout.split(" ", 1)
    return int(faults), state.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and the kernel's fault count")
def test_freed_temporaries_are_reused_not_faulted_in_again():
    """20 training steps of 1568-400-20 at batch 512 (after 5 to warm up) touch no fresh pages once the solver has
    set the policy (``circuits/memory.py``); with glibc's defaults (``EQPROP_MALLOC=system``, which checks that the
    count sees them) each step faulted in about 6,000 pages. (1568-100-20 no longer faults either way at batch 512:
    its statistics' temporaries are smaller since their operands are made by compiled passes.)"""
    kept, state = page_faults({})
    if "kept" not in state:
        pytest.skip(f"this C library: {state}")
    assert kept < 200, (kept, state)
    system, state = page_faults({"EQPROP_MALLOC": "system"})
    assert "EQPROP_MALLOC=system" in state
    assert system > 20 * 200, (system, state)


@pytest.mark.parametrize("preset,first", [(None, "eqprop"), (None, "numpy"), ("28", "eqprop")])
def test_importing_eqprop_limits_openblas_idle_spin_unless_the_user_set_it(preset, first):
    """``import eqprop.circuits`` puts OPENBLAS_THREAD_TIMEOUT=22 (``threads.SPIN``) in the environment before it imports numpy (so
    numpy's OpenBLAS, loaded after, reads it), keeps a value the user set, and says in ``threads.describe()`` when
    numpy had loaded first (its OpenBLAS then keeps its own value); child processes inherit the variable."""
    env = {k: v for k, v in os.environ.items() if k != threads.SPIN_ENV}
    if preset is not None:
        env[threads.SPIN_ENV] = preset
    code = textwrap.dedent(f"""
        import os, subprocess, sys
        {"import numpy" if first == "numpy" else ""}
        assert "numpy" not in sys.modules or {first == "numpy"}
        import eqprop.circuits
        from eqprop.circuits import threads
        print(os.environ["{threads.SPIN_ENV}"])
        print(threads.describe())
        print(subprocess.run([sys.executable, "-c", "import os; print(os.environ['{threads.SPIN_ENV}'])"],
                             capture_output=True, text=True).stdout.strip())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    value, described, child = out.stdout.strip().splitlines()
    want = preset or str(threads.SPIN)
    assert value == child == want
    assert f"{threads.SPIN_ENV}={want}" in described
    assert ("yours" in described) == (preset is not None)
    assert ("numpy was imported before eqprop" in described) == (first == "numpy")


def test_a_setting_is_read_as_the_environment_holds_it_at_each_call(monkeypatch):
    """``settings.setting`` is ``os.environ.get(name, "")`` at every call: set, changed, unset and set through
    ``os.environ`` directly while the process runs; the kernels' switch and the thread count follow it."""
    from eqprop.circuits import kernels
    from eqprop.circuits.settings import setting

    monkeypatch.delenv("EQPROP_TEST_SETTING", raising=False)
    assert setting("EQPROP_TEST_SETTING") == ""
    monkeypatch.setenv("EQPROP_TEST_SETTING", "a b")
    assert setting("EQPROP_TEST_SETTING") == "a b"
    os.environ["EQPROP_TEST_SETTING"] = "\u00e9"
    assert setting("EQPROP_TEST_SETTING") == os.environ.get("EQPROP_TEST_SETTING") == "\u00e9"
    monkeypatch.delenv("EQPROP_TEST_SETTING")
    assert setting("EQPROP_TEST_SETTING") == ""
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.cores() == 1
    monkeypatch.setenv("EQPROP_KERNELS", "numpy")
    assert not kernels.available()
    monkeypatch.setenv("EQPROP_KERNELS", "")
    assert kernels.available() == (kernels.njit is not None)
