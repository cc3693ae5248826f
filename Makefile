# The two commands: `make demo` and `make test`. Both install what is missing and start the services.
PY := .venv/bin/python
export MONGODB_URI ?= mongodb://127.0.0.1:$(or $(FERRETDB_PORT),27017)

.PHONY: setup up down demo demo-dummy test lint typecheck pytest bench chaos soak docs clean mutants mutmut \
	k8s-build k8s-up k8s-down k8s-clean k8s-smoke k8s-check k8s-deploy k8s-e2e

setup:
	bash scripts/setup.sh

up: setup
	bash scripts/services.sh up

down:
	bash scripts/services.sh down

demo: up
	$(PY) scripts/demo.py

demo-dummy: up
	$(PY) scripts/demo.py --dummy

lint:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/lint-imports

typecheck:
	.venv/bin/mypy

pytest:
	$(PY) -m pytest -q

test: up lint typecheck pytest

# every curated mutant of tests/mutants/ (or those named in MUTANTS) must be caught by the tests it names
mutants:
	$(PY) tests/mutants/run.py $(MUTANTS)

# mutmut over the pure-logic modules (slow: see README "What is tested, and how")
mutmut:
	$(PY) tests/mutants/mutmut_modules.py run
	$(PY) tests/mutants/mutmut_modules.py scores

bench: up
	$(PY) bench/overhead.py

# The chaos suite (tests/chaos/): it starts its own FerretDB and RabbitMQ on free ports, so it needs
# the installation only, not the shared services.
chaos: setup
	$(PY) -m pytest -q -s -m chaos tests/chaos

soak: setup
	nice -n 19 $(PY) bench/soak.py --minutes 10

clean:
	rm -rf demo-output .state/skydriver

docs:
	cd scripts && ../$(PY) update_readme.py
	$(PY) -m skydriver.rest.routes

# --- one-node Kubernetes (scripts/k8s/; see README "Deploying on Kubernetes") ---------------------
# k8s-up builds what is missing (cached in ~/.cache/skydriver/k8s), starts the cluster and imports the
# images; k8s-down stops it and removes every trace from the host (data stays in .state/k8s;
# k8s-clean removes that too). k8s-smoke checks the running cluster (tests/k8s/test_cluster.py, pytest
# marker k8s, not part of `make test`); k8s-e2e runs RBAC checks and scans on the deployment of
# k8s-deploy (tests/k8s/test_rbac.py, test_e2e.py); k8s-check verifies after k8s-down that nothing is left.
k8s-build:
	bash scripts/k8s/build.sh

k8s-up: setup k8s-build
	bash scripts/k8s/up.sh

k8s-down:
	bash scripts/k8s/down.sh

k8s-clean:
	bash scripts/k8s/down.sh --purge

k8s-smoke:
	$(PY) -m pytest -q -m k8s tests/k8s/test_cluster.py

k8s-check:
	bash scripts/k8s/check-clean.sh

k8s-deploy:
	bash scripts/k8s/deploy-one-node.sh

k8s-e2e:
	$(PY) -m pytest -q -m k8s tests/k8s/test_rbac.py tests/k8s/test_readme_k8s.py tests/k8s/test_e2e.py tests/k8s/test_faults.py
