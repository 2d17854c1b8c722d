"""Planning: the chosen components in order with their sizing (`planner`, `planned`), and pure
functions of the plan that components and passes read (traffic, routes, roles, admission,
monitoring, node pools, the verify probe's image)."""
