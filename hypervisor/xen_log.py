"""Xen's console lines as data: the message catalogue of the vGIC/vITS and a tiny C printf.

Every message the modelled vGICv3, vITS and vGIC code can print is a :class:`XenMessage`
holding the C format string exactly as it appears in the Xen 4.17 source, its log level and
the function that prints it, so a reader can grep the source for it. :func:`c_format`
renders a C format with Xen's conversions (``%pv`` is the vCPU name ``d0v1``; ``%#08x`` of
zero has no ``0x`` prefix, as in C). The real console shows these lines with ``(XEN) ``
in front (real-boot/xen-dom0-dt.log: ``(XEN) d0v0: vGICD: RAZ on reserved register offset
0x00000c``).

Three printers exist in Xen (xen/include/xen/lib.h):

* ``printk(lvl fmt)`` prints in every build;
* ``gprintk(lvl, fmt)`` is ``printk(lvl "%pv " fmt, current)``;
* ``gdprintk(lvl, fmt)`` is ``printk(lvl "%s:%d:%pv " fmt, __FILE__, __LINE__, current)`` in
  debug builds and **nothing** in release builds (debug=n, as Debian's 4.17). Line numbers are
  not modelled: a gdprintk line reads ``arch/arm/vgic-v3-its.c:?:d0v0 ...``.

The console levels (loglvl / guest_loglvl) and printk rate limiting are not modelled: every
line a printer would emit is handed to the sink; the real boots used ``loglvl=all
guest_loglvl=all``. :class:`XenLog` is the emitter the vGIC modules share.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Printer = Literal["printk", "gprintk", "gdprintk"]

#: Xen's register_t format (xen/arch/arm/include/asm/types.h, arm64): "016lx".
PRIregister = "016lx"


@dataclass(frozen=True, slots=True)
class XenMessage:
    """One printk site: level, C format (as in the source), printer, source file and function."""

    key: str
    level: str
    fmt: str
    printer: Printer
    file: str
    function: str


@dataclass(frozen=True, slots=True)
class XenLogLine:
    """One console line Xen printed (without the ``(XEN) `` prefix and trailing newline)."""

    key: str
    level: str
    text: str
    function: str

    def render(self) -> str:
        return f"(XEN) {self.text}"


_CONV = re.compile(
    r"%(?P<flags>[-#0 +]*)(?P<width>\d*)(?:\.(?P<prec>\d+))?(?P<len>hh|h|ll|l|z)?"
    r"(?P<conv>[diuxXscp%])"
)


def _pad(body: str, width: int, flags: str, zero_ok: bool, sign: str = "", prefix: str = "") -> str:
    total = len(sign) + len(prefix) + len(body)
    if width <= total:
        return sign + prefix + body
    if "-" in flags:
        return sign + prefix + body + " " * (width - total)
    if "0" in flags and zero_ok:
        return sign + prefix + "0" * (width - total) + body
    return " " * (width - total) + sign + prefix + body


def c_format(fmt: str, *args: object) -> str:
    """Render a C printf format with Xen's conversions; ``%pv`` takes the vCPU name as a str.

    Integers are formatted from Python ints (negative ``%x`` arguments are shown as 64-bit
    two's complement, as an ``unsigned long`` would be). Missing arguments render as ``?``.
    """
    out: list[str] = []
    pos = 0
    it = iter(args)
    i = 0
    while True:
        m = _CONV.search(fmt, pos)
        if m is None:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos : m.start()])
        pos = m.end()
        conv = m.group("conv")
        if conv == "%":
            out.append("%")
            continue
        flags = m.group("flags") or ""
        width = int(m.group("width") or 0)
        if conv == "p":
            # %pv: Xen's vCPU pointer format (d<domid>v<vcpuid>); the 'v' follows the 'p'.
            if fmt[pos : pos + 1] == "v":
                pos += 1
            out.append(str(next(it, "?")))
            i += 1
            continue
        arg = next(it, None)
        i += 1
        if arg is None:
            out.append("?")
            continue
        if conv == "s":
            out.append(_pad(str(arg), width, flags.replace("0", ""), False))
        elif conv == "c":
            out.append(str(arg)[:1])
        elif conv in "di":
            v = int(arg)  # type: ignore[call-overload]
            sign = "-" if v < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
            out.append(_pad(str(abs(v)), width, flags, True, sign))
        elif conv == "u":
            out.append(_pad(str(int(arg) & (2**64 - 1)), width, flags, True))  # type: ignore[call-overload]
        else:  # x / X
            bits = {"hh": 8, "h": 16}.get(m.group("len") or "", 64)
            v = int(arg) & ((1 << bits) - 1)  # type: ignore[call-overload]
            body = format(v, "x" if conv == "x" else "X")
            prefix = ("0x" if conv == "x" else "0X") if ("#" in flags and v != 0) else ""
            out.append(_pad(body, width, flags, True, "", prefix))
    return "".join(out)


def _m(key: str, level: str, fmt: str, printer: Printer, file: str, function: str) -> XenMessage:
    return XenMessage(key, level, fmt, printer, file, function)


_V3 = "arch/arm/vgic-v3.c"
_ITS = "arch/arm/vgic-v3-its.c"
_VGIC = "arch/arm/vgic.c"
_GICV = "arch/arm/gic-vgic.c"
_R = PRIregister

#: Every message the vGIC models print, keyed by a stable name.
MESSAGES: dict[str, XenMessage] = {
    m.key: m
    for m in (
        # ---- vgic-v3.c: distributor (vgic_v3_distr_mmio_read / _write) ----
        _m("vgicd.bad_read_width", "XENLOG_G_ERR",
           "%pv: vGICD: bad read width %d r%d offset %#08x", "printk", _V3, "vgic_v3_distr_mmio_read"),
        _m("vgicd.unhandled_read", "XENLOG_G_ERR",
           "%pv: vGICD: unhandled read r%d offset %#08x", "printk", _V3, "vgic_v3_distr_mmio_read"),
        _m("vgicd.raz_impl", "XENLOG_G_DEBUG",
           "%pv: vGICD: RAZ on implementation defined register offset %#08x", "printk", _V3,
           "vgic_v3_distr_mmio_read"),
        _m("vgicd.raz_reserved", "XENLOG_G_DEBUG",
           "%pv: vGICD: RAZ on reserved register offset %#08x", "printk", _V3,
           "vgic_v3_distr_mmio_read"),
        _m("vgicd.bad_write_width", "XENLOG_G_ERR",
           "%pv: vGICD: bad write width %d r%d=%" + _R + " offset %#08x", "printk", _V3,
           "vgic_v3_distr_mmio_write"),
        _m("vgicd.unhandled_write", "XENLOG_G_ERR",
           "%pv: vGICD: unhandled write r%d=%" + _R + " offset %#08x", "printk", _V3,
           "vgic_v3_distr_mmio_write"),
        _m("vgicd.wi_impl", "XENLOG_G_DEBUG",
           "%pv: vGICD: WI on implementation defined register offset %#08x", "printk", _V3,
           "vgic_v3_distr_mmio_write"),
        _m("vgicd.wi_reserved", "XENLOG_G_DEBUG",
           "%pv: vGICD: WI on reserved register offset %#08x", "printk", _V3,
           "vgic_v3_distr_mmio_write"),
        # ---- vgic-v3.c: registers common to GICD and GICR SGI_base (name = vGICD / vGICR: SGI) ----
        _m("common.bad_read_width", "XENLOG_G_ERR",
           "%pv: %s: bad read width %d r%d offset %#08x", "printk", _V3,
           "__vgic_v3_distr_common_mmio_read"),
        _m("common.unhandled_read", "XENLOG_G_ERR",
           "%pv: %s: unhandled read r%d offset %#08x", "printk", _V3,
           "__vgic_v3_distr_common_mmio_read"),
        _m("common.bad_write_width", "XENLOG_G_ERR",
           "%pv: %s: bad write width %d r%d=%" + _R + " offset %#08x", "printk", _V3,
           "__vgic_v3_distr_common_mmio_write"),
        _m("common.unhandled_write", "XENLOG_G_ERR",
           "%pv: %s: unhandled write r%d=%" + _R + " offset %#08x", "printk", _V3,
           "__vgic_v3_distr_common_mmio_write"),
        _m("common.unhandled_icpendr", "XENLOG_G_ERR",
           "%pv: %s: unhandled word write %#" + _R + " to ICPENDR%d", "printk", _V3,
           "__vgic_v3_distr_common_mmio_write"),
        _m("common.unhandled_isactiver", "XENLOG_G_ERR",
           "%pv: %s: unhandled word write %#" + _R + " to ISACTIVER%d", "printk", _V3,
           "__vgic_v3_distr_common_mmio_write"),
        _m("common.unhandled_icactiver", "XENLOG_G_ERR",
           "%pv: %s: unhandled word write %#" + _R + " to ICACTIVER%d", "printk", _V3,
           "__vgic_v3_distr_common_mmio_write"),
        # ---- vgic-v3.c: redistributor RD_base (__vgic_v3_rdistr_rd_mmio_read / _write) ----
        _m("vgicr.bad_read_width", "XENLOG_G_ERR",
           "%pv vGICR: bad read width %d r%d offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_read"),
        _m("vgicr.unhandled_read", "XENLOG_G_ERR",
           "%pv: vGICR: unhandled read r%d offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_read"),
        _m("vgicr.raz_impl", "XENLOG_G_DEBUG",
           "%pv: vGICR: RAZ on implementation defined register offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_read"),
        _m("vgicr.raz_reserved", "XENLOG_G_DEBUG",
           "%pv: vGICR: RAZ on reserved register offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_read"),
        _m("vgicr.bad_write_width", "XENLOG_G_ERR",
           "%pv: vGICR: bad write width %d r%d=%" + _R + " offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_write"),
        _m("vgicr.unhandled_write", "XENLOG_G_ERR",
           "%pv: vGICR: unhandled write r%d offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_write"),
        _m("vgicr.wi_impl", "XENLOG_G_DEBUG",
           "%pv: vGICR: WI on implementation defined register offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_write"),
        _m("vgicr.wi_reserved", "XENLOG_G_DEBUG",
           "%pv: vGICR: WI on reserved register offset %#08x", "printk", _V3,
           "__vgic_v3_rdistr_rd_mmio_write"),
        _m("vgicr.unknown_gpa_read", "XENLOG_G_WARNING",
           "%pv: vGICR: unknown gpa read address %016lx", "printk", _V3, "vgic_v3_rdistr_mmio_read"),
        _m("vgicr.unknown_gpa_write", "XENLOG_G_WARNING",
           "%pv: vGICR: unknown gpa write address %016lx", "printk", _V3,
           "vgic_v3_rdistr_mmio_write"),
        # ---- vgic-v3.c: redistributor SGI_base ----
        _m("sgi.bad_read_width", "XENLOG_G_ERR",
           "%pv: vGICR: SGI: bad read width %d r%d offset %#08x", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_read"),
        _m("sgi.unhandled_read", "XENLOG_G_ERR",
           "%pv: vGICR: SGI: unhandled read r%d offset %#08x", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_read"),
        _m("sgi.raz_impl", "XENLOG_G_DEBUG",
           "%pv: vGICR: SGI: RAZ on implementation defined register offset %#08x", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_read"),
        _m("sgi.raz_reserved", "XENLOG_G_DEBUG",
           "%pv: vGICR: SGI: RAZ on reserved register offset %#08x", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_read"),
        _m("sgi.bad_write_width", "XENLOG_G_ERR",
           "%pv: vGICR: SGI: bad write width %d r%d=%" + _R + " offset %#08x", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_write"),
        _m("sgi.unhandled_write", "XENLOG_G_ERR",
           "%pv: vGICR: SGI: unhandled write r%d offset %#08x", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_write"),
        _m("sgi.unhandled_icpendr0", "XENLOG_G_ERR",
           "%pv: vGICR: SGI: unhandled word write %#" + _R + " to ICPENDR0", "printk", _V3,
           "vgic_v3_rdistr_sgi_mmio_write"),
        # ---- vgic-v3.c: ICC_SGI1R_EL1 (vgic_v3_emulate_sgi1r) / vgic.c vgic_to_sgi ----
        _m("sgi1r.read", "XENLOG_WARNING", "Reading SGI1R_EL1 - WO register\n", "gdprintk", _V3,
           "vgic_v3_emulate_sgi1r"),
        # The source's line continuation puts 25 spaces into the format (Xen commit of 2024).
        _m("sgi.wrong_target", "XENLOG_WARNING",
           "VGIC: write r=%" + _R + "                         target->list=%hx, wrong CPUTargetList \n",
           "gprintk", _VGIC, "vgic_to_sgi"),
        # ---- vgic.c / gic-vgic.c ----
        _m("migrate.in_progress", "XENLOG_WARNING",
           "irq %u migration failed: requested while in progress\n", "gprintk", _VGIC,
           "vgic_migrate_irq"),
        _m("lr.hw_already_active", "XENLOG_WARNING",
           "unable to inject hw irq=%d into %pv: already active in LR%d\n", "gdprintk", _GICV,
           "gic_update_one_lr"),
        # ---- vgic-v3-its.c ----
        _m("gits.unhandled_read", "XENLOG_G_ERR",
           "%pv: vGITS: unhandled read r%d offset %#04lx", "printk", _ITS, "vgic_v3_its_mmio_read"),
        _m("gits.raz_impl", "XENLOG_G_DEBUG",
           "%pv: vGITS: RAZ on implementation defined register offset %#04lx", "printk", _ITS,
           "vgic_v3_its_mmio_read"),
        _m("gits.raz_reserved", "XENLOG_G_DEBUG",
           "%pv: vGITS: RAZ on reserved register offset %#04lx", "printk", _ITS,
           "vgic_v3_its_mmio_read"),
        _m("gits.bad_read_width", "XENLOG_G_ERR",
           "vGITS: bad read width %d r%d offset %#04lx", "printk", _ITS, "vgic_v3_its_mmio_read"),
        _m("gits.unhandled_write", "XENLOG_G_ERR",
           "%pv: vGITS: unhandled write r%d offset %#04lx", "printk", _ITS,
           "vgic_v3_its_mmio_write"),
        _m("gits.wi_impl", "XENLOG_G_DEBUG",
           "%pv: vGITS: WI on implementation defined register offset %#04lx", "printk", _ITS,
           "vgic_v3_its_mmio_write"),
        # write_reserved prints the implementation-defined text too (as in the source).
        _m("gits.wi_reserved", "XENLOG_G_DEBUG",
           "%pv: vGITS: WI on implementation defined register offset %#04lx", "printk", _ITS,
           "vgic_v3_its_mmio_write"),
        _m("gits.bad_write_width", "XENLOG_G_ERR",
           "vGITS: bad write width %d r%d offset %#08lx", "printk", _ITS, "vgic_v3_its_mmio_write"),
        _m("gits.enable_without_tables", "XENLOG_G_WARNING",
           "d%d tried to enable ITS without having the tables configured.", "printk", _ITS,
           "vgic_v3_verify_its_status"),
        _m("gits.cbaser_while_enabled", "XENLOG_WARNING",
           "vGITS: tried to change CBASER with the ITS enabled.\n", "gdprintk", _ITS,
           "vgic_v3_its_mmio_write"),
        _m("gits.baser0_while_enabled", "XENLOG_WARNING",
           "vGITS: tried to change BASER with the ITS enabled.\n", "gdprintk", _ITS,
           "vgic_v3_its_mmio_write"),
        _m("gits.baser1_while_enabled", "XENLOG_INFO",
           "vGITS: tried to change BASER with the ITS enabled.\n", "gdprintk", _ITS,
           "vgic_v3_its_mmio_write"),
        _m("gits.cmds_error", "XENLOG_WARNING", "error handling ITS commands\n", "gdprintk", _ITS,
           "vgic_v3_its_mmio_write"),
        _m("gits.cmd_error", "XENLOG_WARNING",
           "vGITS: ITS command error %d while handling command\n", "gdprintk", _ITS,
           "vgic_its_handle_cmds"),
        _m("gits.cmd_unhandled", "XENLOG_WARNING", "vGITS: unhandled ITS command\n", "gdprintk",
           _ITS, "vgic_its_handle_cmds"),
        _m("gits.cmd_movall", "XENLOG_G_INFO", "vGITS: ignoring MOVALL command\n", "gdprintk",
           _ITS, "vgic_its_handle_cmds"),
        _m("gits.cmd_dump", "XENLOG_WARNING", "  cmd 0x%02lx: %016lx %016lx %016lx %016lx\n",
           "gdprintk", _ITS, "dump_its_command"),
    )
}  # fmt: skip


class XenLog:
    """Emits :class:`XenLogLine` to a sink as Xen's printers would, for one build flavour."""

    def __init__(self, sink: Callable[[XenLogLine], None] | None, *, debug_build: bool = False):
        self.sink = sink
        self.debug_build = debug_build

    def emit(self, key: str, current: str, *args: object) -> XenLogLine | None:
        """Print message ``key``. ``current`` is the vCPU name: it fills a leading ``%pv`` of
        the format and is the prefix gprintk/gdprintk add; ``args`` fill the rest."""
        msg = MESSAGES[key]
        if msg.fmt.startswith("%pv"):
            args = (current, *args)
        text = c_format(msg.fmt, *args)
        if msg.printer == "gprintk":
            text = f"{current} {text}"
        elif msg.printer == "gdprintk":
            if not self.debug_build:
                return None
            text = f"{msg.file}:?:{current} {text}"
        line = XenLogLine(key, msg.level, text.rstrip("\n"), msg.function)
        if self.sink is not None:
            self.sink(line)
        return line


def vcpu_name(domid: int, vcpu: int) -> str:
    """Xen's ``%pv``: ``d<domid>v<vcpu>``."""
    return f"d{domid}v{vcpu}"
