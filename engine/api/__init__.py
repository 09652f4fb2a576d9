"""The HTTP API: FastAPI routers over the engine's commands and queries."""
