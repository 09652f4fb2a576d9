"""Running instances: the command runner and everything it needs to step SpiffWorkflow safely."""
