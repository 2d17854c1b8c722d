"""What is said about a compiled city: compliance, capacity, the diagram and its figure, the
component docs, the comparison of two cities, the JSON views of the CLI."""
