"""Bounds on what metrics may export, shared by the settings and the collectors."""

# Each exported device costs three series (cpu, memory, disk); Prometheus suffers long
# before a fleet does, so per-device readings never cover more devices than this.
DEVICE_HARD_LIMIT = 1000
