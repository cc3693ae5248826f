# The two commands: `make demo` and `make test`. Both install what is missing and start the services.
PY := .venv/bin/python
export MONGODB_URI ?= mongodb://127.0.0.1:$(or $(FERRETDB_PORT),27017)

.PHONY: setup up down demo demo-dummy test lint typecheck pytest bench chaos soak docs clean mutants mutmut

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
