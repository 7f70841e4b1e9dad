"""The GICv3 architecture: encodings and the hardware as pure, synchronous state machines.

Imports nothing else of this project. No I/O, no trio.
"""
