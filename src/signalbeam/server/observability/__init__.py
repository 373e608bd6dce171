"""Prometheus metrics of a running control plane: what it counts, what it reads, how it is served."""
