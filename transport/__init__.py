"""The wire: message types, framing, links, the trace format and fault-injecting links.

Imports nothing else of this project.
"""
