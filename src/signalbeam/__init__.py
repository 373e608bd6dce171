"""SignalBeam: a self-hosted fleet manager for edge devices."""

__version__ = "0.1.0"
