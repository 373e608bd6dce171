"""The load generator: a separate process so the runner can measure it and the server."""
