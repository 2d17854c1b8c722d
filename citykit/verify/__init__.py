"""`citykit verify`: proof that the deployed city works, from inside the cluster.

`flows.py` derives the flow matrix from the graph, `checks.py` turns the components' declared
checks and the flows into probe pods and their output into outcomes, `probe.py` is the probe
image and pod, `runner.py` runs the pods, `drill.py` the restore drill."""
