"""The end-to-end tier: a package, so its cluster is torn down after its last test (before the
kind tier, which runs next in the same worker, starts its own)."""
