"""The threading policy (circuits/threads.py): a solve never keeps more threads running than cores."""
import os
import subprocess
import sys
import textwrap

import pytest

from eqprop.circuits import threads

COUNT_RUNNING = textwrap.dedent("""
    import os, threading, time
    import numpy as np
    from eqprop.circuits import layered, solve, threads

    def running(skip):
        n = 0
        for t in os.listdir("/proc/self/task"):
            if t == skip:
                continue
            try:
                state = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            n += state == "R"
        return n

    counts, stop = [], threading.Event()

    def sample():
        me = str(threading.get_native_id())
        while not stop.is_set():
            counts.append(running(me))
            time.sleep(0.0005)

    net = layered([1568, 100, 20], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (128 * threads.cores(), 784))  # split over every core
    solve(net, x)
    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 2:
        solve(net, x)
    stop.set()
    sampler.join()
    print(threads.cores(), sum(c > threads.cores() for c in counts) / len(counts))
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc")
def test_a_large_batch_solve_keeps_no_more_threads_running_than_cores():
    """Sampled every half millisecond during solves of a batch split over every core: more threads running than
    cores in at most a quarter of the samples (the sampler itself and threads on their way to sleep take some).
    Without the policy, each chunk thread's BLAS started threads of its own: more running than cores in about 80%
    of the samples on 2 cores."""
    done = subprocess.run([sys.executable, "-c", COUNT_RUNNING], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")})
    assert done.returncode == 0, done.stderr[-2000:]
    cores, over = done.stdout.split()
    assert float(over) < 0.25, f"more threads running than {cores} cores in {float(over):.0%} of the samples"


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
