"""Who may do what: departments, users, roles, passwords and task permissions."""
