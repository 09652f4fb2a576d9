"""Service work as durable jobs: the outbox rows, their leases, dispatch and results."""
