"""Reading the inputs: safe YAML with located errors, the rules for names, the profile and the
environment models."""
