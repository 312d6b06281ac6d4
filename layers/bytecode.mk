# Included by the layer's Makefile and by every function's (sam build, BuildMethod: makefile).
#
# Lambda's /opt and /var/task are read-only: a module without a matching cpython-313 .pyc is
# compiled from source at every cold start. So the artifacts carry bytecode from Python 3.13, in
# unchecked-hash mode: the loader trusts the .pyc without reading or hashing the source, and
# without the timestamps that sam's zip (1980-01-01) would make stale. A deployed artifact never
# changes, so there is nothing to check; checked-hash would read and hash every source file at
# every import. A build by another interpreter stops here rather than ship sources only.
PYTHON ?= python3

define compile-bytecode
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else \
		"sam build needs Python 3.13 (Lambda python3.13) to compile bytecode; $(PYTHON) is %d.%d. " \
		"Run make build (its venv is 3.13), or put a python3 that is 3.13 first on PATH." % sys.version_info[:2])'
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)"
endef

# A function folder: its sources (not this Makefile), compiled.
build-%Function:
	cp -R $(filter-out Makefile,$(wildcard *)) "$(ARTIFACTS_DIR)/"
	$(call compile-bytecode,$(ARTIFACTS_DIR))
