"""The Linux guest model. Imports `gic` and `transport` only; meets a host only through messages."""
