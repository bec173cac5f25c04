# qcspin: two entry points.
#   make demo   install what is missing, run the 2D spin-valve example, write HDF5 + PNG
#   make test   install what is missing, lint (ruff, mypy), run the tests serially and under
#               mpirun -n 2, build the documentation (warnings are errors)
PY := .venv/bin/python
OUT := results/demo

.PHONY: install demo test lint test-serial test-mpi docs bench clean

install:
	@bash scripts/install.sh

demo: install
	@mkdir -p results
	$(PY) -m toolkit.cli run examples/valve_2d.toml -o $(OUT).h5 --overwrite
	$(PY) -m toolkit.cli plot $(OUT).h5 -o $(OUT).png

test: install lint test-serial test-mpi docs

lint:
	.venv/bin/ruff check
	.venv/bin/mypy

test-serial:
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 tests

test-mpi:
	bash scripts/mpi_pytest.sh 2 tests

docs:
	cd docs && ../$(PY) -m sphinx -W --keep-going -q -b html . _build/html
	@echo "documentation: docs/_build/html/index.html"

bench: install
	$(PY) scripts/bench_closed.py

clean:
	rm -rf results .pytest_cache docs/_build
