# The two front-door commands: `make demo` and `make test`. Both set the environment up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup oracle test demo clean

help:
	@echo "make setup  - create .venv (ROS 2 Jazzy wheels, torch CPU, ...), colcon-build src/, write env.bash"
	@echo "make test   - setup, then run every package's tests with DDS isolation"
	@echo "make demo   - setup, then record, train, deploy and evaluate a policy on the simulated SO-101"
	@echo "make clean  - remove build/, install/, log/ (keeps .venv)"

setup:
	@bash scripts/setup.sh

# Upstream lerobot 0.4.4 in .venv-oracle for the compatibility tests (no-op unless scripts/setup_oracle.sh changed).
oracle:
	@bash scripts/setup_oracle.sh

test: setup oracle
	@bash scripts/run_tests.sh

demo: setup
	@bash scripts/demo.sh

clean:
	rm -rf build install log
