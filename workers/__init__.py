"""Service-task handlers, one module per topic family; importing the package registers them.

Each handler's input and output variables are listed in docs/handlers.md and its docstring.
Outside systems are reached through `workers.adapters`.
"""

from workers import certificate, delivery, notify, payment, verify

__all__ = ["certificate", "delivery", "notify", "payment", "verify"]
