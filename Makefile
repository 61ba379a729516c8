# Two commands do everything on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   -- the main job on the built-in default data
#   make test   -- the test suite
# Each creates (or reuses) .venv and installs the package with the exact versions in constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# system tools, as command:package pairs: the synthesiser and sox for the corpus, npm for the piano
# samples, chromium for the report pages' test (tests/test_report_pages.py opens each page headless);
# libmp3lame0 (mp3 through tensorflow-io) is a library, found through ldconfig
SYSTEM_TOOLS := fluidsynth:fluidsynth sox:sox npm:npm chromium:chromium
# overridable (tests run system-deps with fakes): the package tool, the library lookup, and
# IS_ROOT (yes: install what is missing; anything else: print the command to run)
APT_GET  ?= apt-get
LDCONFIG ?= ldconfig
IS_ROOT  ?= $(shell [ "$$(id -u)" = 0 ] && echo yes)
# test processes (pytest-xdist): tests that share trained tiny runs, and each file's tests, stay in
# one process (tests/conftest.py), so the runs are trained once; CI has 2 cores
TEST_WORKERS ?= 2

.PHONY: demo test lint system-deps venv clean bench mutate

# setup.cfg holds compatible ranges; constraints.txt the exact versions we test with
$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade -c constraints.txt pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,corpus]'
	# the note transcriber of Table 3's musicality measures (tf_ada/transcribe.py) runs the TFLite
	# model bundled in basic-pitch's wheel with TensorFlow's own interpreter; the package declares
	# tensorflow<2.15.1 (against our pin), so it goes in without its dependencies, none of which we use
	$(BIN)/pip install --quiet --no-deps basic-pitch==0.4.0
	touch $(STAMP)

venv: $(STAMP)

# Installs only the packages whose tool is missing (npm already on the PATH, e.g. from NodeSource,
# is never asked for: apt's npm conflicts with it). Each package is installed on its own; if that
# fails, the package lists are refreshed once and it is tried again; a package that still fails
# stops here with one line naming it and the command to run by hand.
system-deps:
	@missing=""; \
	for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	$(LDCONFIG) -p 2>/dev/null | grep -q libmp3lame || missing="$$missing libmp3lame0"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$(IS_ROOT)" != yes ]; then \
	  echo "system-deps: missing packages:$$missing; install them with: sudo apt-get install -y$$missing"; \
	  exit 0; \
	fi; \
	updated=""; \
	for pkg in $$missing; do \
	  echo "system-deps: installing $$pkg"; \
	  log=$$($(APT_GET) install -y --no-install-recommends $$pkg 2>&1) && continue; \
	  if [ -z "$$updated" ]; then \
	    updated=yes; \
	    $(APT_GET) update -qq >/dev/null 2>&1; \
	    log=$$($(APT_GET) install -y --no-install-recommends $$pkg 2>&1) && continue; \
	  fi; \
	  reason=$$(printf '%s\n' "$$log" | grep '^E:' | tail -n 1); \
	  echo "system-deps: error: could not install $$pkg ($${reason:-$(APT_GET) failed}); install it by hand: sudo apt-get update && sudo apt-get install -y $$pkg" >&2; \
	  exit 1; \
	done

demo: $(STAMP) system-deps
	$(BIN)/python -m reproduce.demo --out runs/demo

# ruff, configured in pyproject.toml (120 columns, McCabe complexity at most 20)
lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) system-deps
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests

bench: $(STAMP)
	$(BIN)/python -m tf_ada.bench data

# Mutation testing (issue 14; not part of make test, a few minutes): every one-line mutation of a paper
# detail listed in tests/mutate.py is applied to a temporary copy of HEAD (never the working tree)
# and must make its named tests fail; prints killed/survived and the kill rate, fails if any survives.
mutate: $(STAMP)
	nice -n 19 $(BIN)/python tests/mutate.py

clean:
	rm -rf $(VENV) runs *.egg-info
