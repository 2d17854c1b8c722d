"""The kind tier: a package of its own, outside tests/e2e, whose cluster fixture ends with that
package; it runs after the faults tier in their worker (tests/conftest.py)."""
