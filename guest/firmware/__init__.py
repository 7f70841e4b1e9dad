"""The guest's firmware parsers: FDT, ACPI and EFI, written apart from the host's builders.

Every parser raises a subclass of :class:`FirmwareError` (a ValueError) naming the table
and offset on bad input; none lets an IndexError or struct.error escape.
"""


class FirmwareError(ValueError):
    """Malformed firmware data: truncated, bad magic or signature, bad checksum."""
