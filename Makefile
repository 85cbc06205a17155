# Two commands do everything on a fresh machine: `make demo` and `make test` (`make test-all` adds the slow checks).
VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
PYTEST    := $(PY) -m pytest

.PHONY: setup demo test test-all test-slow bench bench-spice bench-lava bench-cluster reliability compare clean
setup: $(STAMP)

# Re-runs only when pyproject.toml changes (or the venv is gone): quick when already done. The installed modules are
# byte-compiled on every core (pip compiles them one by one: a third of the setup); with PYTHONDONTWRITEBYTECODE set,
# as on this machine, nothing else writes them and every process would compile its imports again.
$(STAMP): pyproject.toml
	@scripts/ensure-ngspice
	@test -x $(PY) || { P=$$(scripts/find-python310) && echo "creating $(VENV) with $$P" && $$P -m venv $(VENV); }
	@$(PY) -c 'import sys; assert sys.version_info[:2]==(3,10), "$(VENV) is not Python 3.10: rm -rf $(VENV) and rerun"'
	$(PY) -m pip install -q --no-compile --disable-pip-version-check -e '.[dev]'
	@$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null || true
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/eqprop demo

# Two workers (pytest-xdist; Ray's tests share one): on 2 cores 7 min instead of 12 serially (3 workers: slower).
test: setup
	$(PYTEST) -q -n 2 --dist loadgroup

# Everything: the suite above and the slow checks (long trainings, the heaviest Lava and kill trials).
test-all: setup
	$(PYTEST) -q -m "" --timeout=7200

test-slow: setup
	$(PYTEST) -q -m slow --timeout=7200

bench: setup
	$(PY) benchmarks/solver.py

bench-spice: setup
	$(PY) benchmarks/spice_vs_native.py

bench-lava: setup
	$(PY) benchmarks/lava_throughput.py

bench-cluster: setup
	$(PY) benchmarks/spice_scaling.py

# Bad inputs over every entry point, then SIGKILLed training runs and ngspice workers (about 3 minutes).
reliability: setup
	$(PY) benchmarks/reliability.py
	$(PY) benchmarks/faults.py

compare: setup
	$(VENV)/bin/eqprop compare --out reports/compare

clean:
	rm -rf $(VENV) build *.egg-info runs
