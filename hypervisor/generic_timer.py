"""The Arm generic timer's virtual timer (CNTV_*) as both hosts serve it.

Bits of CNTV_CTL_EL0 as the Arm ARM (D13.8) names them; ``output`` is the
timer's interrupt line: condition met, enabled and not masked.
"""

from __future__ import annotations

from dataclasses import dataclass

CNTV_CTL_ENABLE = 1 << 0
CNTV_CTL_IMASK = 1 << 1
CNTV_CTL_ISTATUS = 1 << 2
#: The timer registers a host serves on a system-register access.
TIMER_REGS = ("CNTV_CTL_EL0", "CNTV_CVAL_EL0", "CNTV_TVAL_EL0", "CNTVCT_EL0", "CNTFRQ_EL0")


@dataclass(slots=True)
class VirtualTimer:
    """One (v)CPU's virtual timer: control, compare value, condition, and a generation
    number that lets a host ignore an expiry scheduled before the last reprogramming."""

    ctl: int = 0
    cval: int = 0
    istatus: bool = False
    generation: int = 0

    @property
    def output(self) -> bool:
        return self.istatus and bool(self.ctl & CNTV_CTL_ENABLE) and not self.ctl & CNTV_CTL_IMASK
