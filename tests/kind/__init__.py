"""The kind tier: a package of its own, so the end-to-end tier's cluster is down before it
starts."""
