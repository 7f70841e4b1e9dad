"""The hosts a guest runs on: bare metal and Xen. Imports `gic` and `transport` only."""
