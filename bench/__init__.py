"""Benchmarks: ``python -m bench [name-filter ...]`` (``make bench``) runs every
``bench/bench_*.py`` module's ``main()``. Each prints its figures against a baseline measured
in the same run and against its targets. Benchmarks are not tests: nothing here asserts."""
