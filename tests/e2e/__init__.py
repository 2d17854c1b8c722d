"""The end-to-end tier: a package, so its cluster is torn down after its last test, before the
real tier, which runs next in the same worker (tests/conftest.py), starts its own."""
