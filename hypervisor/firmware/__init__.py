"""Firmware blobs a guest is handed: device trees, ACPI tables, EFI tables (host side).

Builders only; the guest has its own, independent parsers (guest/firmware/).
"""
