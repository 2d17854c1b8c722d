"""What a component declares (the component contract, its settings model, sizing rules, layers) and
the registry that holds the declarations. The bottom of the pipeline: imports no other stage."""
