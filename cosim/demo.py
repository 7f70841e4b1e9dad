"""``cosim demo``: the main demonstration.

For now it decodes values as they appear in kernel and Xen logs; it grows into
the run matrix as the models land.
"""

from __future__ import annotations

import sys
from typing import TextIO

from cosim import decode

#: (what it is, register or ITS_CMD, value) — the worked examples of gicv3-architecture.md §8.
EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("Linux's GICR_PROPBASER for a table at 0x80A00000, 16 ID bits (its_cpu_init_lpis)", "GICR_PROPBASER", "0x80A0078F"),
    ("GICR_PENDBASER with PTZ set", "GICR_PENDBASER", "0x4000000080bf0000"),
    ("Linux's GITS_CBASER: 64 KiB queue at 0x80C00000 (its_probe_one)", "GITS_CBASER", "0xB8000000_80C0040F"),
    ("A pending Group 1 vLPI 8200 at priority 0xA0 in a list register", "ICH_LR0_EL2", "0x50A0000000002008"),
    ("MAPTI DeviceID 0x10, EventID 3 -> LPI 8195, collection 2", "ITS_CMD",
     "0a00000010000000030000000320000002000000000000000000000000000000"),
    ("Linux's default LPI property byte: priority 0xA0, disabled", "LPI_PROP", "0xA2"),
)  # fmt: skip


def main(out: TextIO = sys.stdout) -> int:
    for what, name, value in EXAMPLES:
        out.write(f"# {what}\n$ cosim decode {name} {value}\n")
        out.flush()
        rc = decode.main(name, value.replace("_", ""), False, out=out)
        if rc:
            return rc
        out.write("\n")
    return 0
