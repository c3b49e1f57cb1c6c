# Two commands do all the set-up on a fresh machine:
#   make demo   runs the main job on the embedded default (synthetic scenes)
#   make test   runs the test suite
# Both create .venv on first use (as does `make notebook`, which runs notebooks/walkthrough.ipynb headless). TORCH overrides the torch pin (CUDA builds come from PyPI by default).
VENV  ?= .venv
PY    := $(VENV)/bin/python
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: demo test notebook install lock clean-venv

demo: $(STAMP)
	$(VENV)/bin/amodal-run experiment=quickstart

# The SLURM tests (tests/test_slurm.py) bring up one local cluster for their session and mostly wait on it:
# they run in a process of their own, without xdist, beside the others; their report follows (skipped with
# the reason where SLURM cannot start). worksteal: a worker that runs out takes tests queued for the other.
test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/lint-imports --no-cache
	@echo '$(VENV)/bin/pytest -p no:xdist -m slurm tests/test_slurm.py (beside the others)'
	@echo '$(VENV)/bin/pytest -n 2 --dist worksteal -m "not slurm"'
	@log=$$(mktemp); \
	$(VENV)/bin/pytest -p no:xdist -m slurm tests/test_slurm.py >$$log 2>&1 & slurm=$$!; \
	$(VENV)/bin/pytest -n 2 --dist worksteal -m "not slurm"; others=$$?; \
	wait $$slurm; slurm_status=$$?; \
	echo "--- the SLURM tests, run beside the others:"; cat $$log; rm -f $$log; \
	test $$others -eq 0 && test $$slurm_status -eq 0

# The runner tests/test_notebook.py uses too; jupyter's nbconvert is not installed.
notebook: $(STAMP)
	$(PY) scripts/run_notebook.py notebooks/walkthrough.ipynb

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	# sam2 compiles an optional CUDA extension unless told not to; it builds against the torch above.
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --no-build-isolation -c constraints.txt sam2
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

clean-venv:
	rm -rf $(VENV)

lock: $(STAMP)
	{ echo "# Versions CI and the Makefile install (tested together); regenerate with: make lock"; \
	  $(PY) -m pip freeze --exclude-editable | grep -viE '^(torch|torchvision|triton|nvidia-|cuda-|amodal)'; } > constraints.txt
