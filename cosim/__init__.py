"""The harness: scenarios, the scheduler and runs, the `cosim` command line, trace tools."""

__version__ = "0.1.0"
