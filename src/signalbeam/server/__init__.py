"""The control plane: device API, management API, dashboard and background workers."""
