"""The fault-injection tier: a package, so its cluster is torn down after its last test."""
