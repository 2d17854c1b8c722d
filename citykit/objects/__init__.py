"""The plan as Kubernetes objects: templates rendered (`render`), then one module per derivation
pass, run in the order `passes.PASSES` lists."""
