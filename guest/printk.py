"""printk as Linux v5.15 prints it: time stamps, levels, taint, the WARN splat and the Oops.

The log is kept as lines ``"[%5lu.%06lu] text"`` (kernel/printk/printk.c ``print_time``);
lines printed before ``time_init`` registers sched_clock carry 0.000000, as every real log
shows. Text is what the modelled function passes to pr_info/pr_warn (with its pr_fmt
prefix already applied by the caller, e.g. "GICv3: ").

The WARN splat follows linux-gicv3-its.md §6 (``report_bug`` -> ``__warn`` ->
``print_modules`` -> arm64 ``show_regs`` -> ``dump_backtrace`` -> ``print_oops_end_marker``
-> ``add_taint(TAINT_WARN)``). Registers the model derives: x0 (the failing call's return
value), x1 (the size argument), x28 (the CPU number); every other register is the documented
filler :data:`REG_FILLER` (a recognisable pattern, not a claim about the real value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "cont", "raw"]

#: v5.15 ``taint_flags[]`` order (kernel/panic.c): the letter when set, ' ' when clear,
#: except TAINT_PROPRIETARY_MODULE which prints 'G' when clear.
TAINT_FLAGS: tuple[tuple[str, str], ...] = (
    ("PROPRIETARY_MODULE", "P"),
    ("FORCED_MODULE", "F"),
    ("CPU_OUT_OF_SPEC", "S"),
    ("FORCED_RMMOD", "R"),
    ("MACHINE_CHECK", "M"),
    ("BAD_PAGE", "B"),
    ("USER", "U"),
    ("DIE", "D"),
    ("OVERRIDDEN_ACPI_TABLE", "A"),
    ("WARN", "W"),
    ("CRAP", "C"),
    ("FIRMWARE_WORKAROUND", "I"),
    ("OOT_MODULE", "O"),
    ("UNSIGNED_MODULE", "E"),
    ("SOFTLOCKUP", "L"),
    ("LIVEPATCH", "K"),
    ("AUX", "X"),
    ("RANDSTRUCT", "T"),
)
#: v5.19 added TAINT_TEST ('N') after 'T': 6.1's "Tainted: G        W          " (the real
#: kexec-dt-noefi.log) has one more column than 5.15's.
TAINT_FLAGS_5_19: tuple[tuple[str, str], ...] = (*TAINT_FLAGS, ("TEST", "N"))
TAINT_NAMES = tuple(n for n, _ in TAINT_FLAGS_5_19)

#: Filler for registers the model does not derive: "0xfi11e2" + register number, so a reader
#: sees at once which values are modelled (x0, x1, x28, x29, sp, lr) and which are not.
REG_FILLER = 0x0000_0000_F111_E200

#: include/linux/printk.h CUT_HERE.
CUT_HERE = "------------[ cut here ]------------"

# PSTATE bits (arch/arm64/include/uapi/asm/ptrace.h).
PSR_N_BIT = 1 << 31
PSR_Z_BIT = 1 << 30
PSR_C_BIT = 1 << 29
PSR_V_BIT = 1 << 28
PSR_D_BIT = 1 << 9
PSR_A_BIT = 1 << 8
PSR_I_BIT = 1 << 7
PSR_F_BIT = 1 << 6
PSR_PAN_BIT = 1 << 22
PSR_UAO_BIT = 1 << 23
PSR_TCO_BIT = 1 << 25
PSR_DIT_BIT = 1 << 24
PSR_SSBS_BIT = 1 << 12
PSR_MODE_EL1h = 0x5
_BTYPES = ("--", "j-", "-c", "jc")


def print_time(ns: int) -> str:
    """``print_time``: "[%5lu.%06lu] " of a nanosecond stamp."""
    ns = max(0, ns)
    return f"[{ns // 1_000_000_000:5d}.{(ns % 1_000_000_000) // 1000:06d}] "


def format_pstate(pstate: int) -> str:
    """arm64 ``print_pstate`` (AArch64 task)."""
    b = pstate

    def c(bit: int, up: str, low: str) -> str:
        return up if b & bit else low

    return (
        f"pstate: {pstate:08x} ("
        f"{c(PSR_N_BIT, 'N', 'n')}{c(PSR_Z_BIT, 'Z', 'z')}{c(PSR_C_BIT, 'C', 'c')}{c(PSR_V_BIT, 'V', 'v')} "
        f"{c(PSR_D_BIT, 'D', 'd')}{c(PSR_A_BIT, 'A', 'a')}{c(PSR_I_BIT, 'I', 'i')}{c(PSR_F_BIT, 'F', 'f')} "
        f"{c(PSR_PAN_BIT, '+', '-')}PAN {c(PSR_UAO_BIT, '+', '-')}UAO {c(PSR_TCO_BIT, '+', '-')}TCO "
        f"{c(PSR_DIT_BIT, '+', '-')}DIT {c(PSR_SSBS_BIT, '+', '-')}SSBS BTYPE={_BTYPES[(b >> 10) & 3]})"
    )


def format_regs(regs: Sequence[int]) -> list[str]:
    """The x29..x0 loop of arm64 ``__show_regs``: three per line, ``x%-2d: %016llx``."""
    lines: list[str] = []
    i = 29
    while i >= 0:
        parts = [f"x{i:<2d}: {regs[i] & (2**64 - 1):016x}"]
        while True:
            cond = i % 3
            i -= 1
            if not cond:
                break
            parts.append(f"x{i:<2d}: {regs[i] & (2**64 - 1):016x}")
        lines.append(" ".join(parts))
    return lines


@dataclass
class Taint:
    """``tainted_mask`` and v5.15 ``print_tainted``."""

    flags: set[str] = field(default_factory=set)
    table: tuple[tuple[str, str], ...] = TAINT_FLAGS

    def add(self, name: str) -> None:
        if name not in TAINT_NAMES:
            raise ValueError(f"unknown taint flag {name!r}")
        self.flags.add(name)

    def text(self) -> str:
        if not self.flags:
            return "Not tainted"
        chars = []
        for i, (name, letter) in enumerate(self.table):
            if name in self.flags:
                chars.append(letter)
            else:
                chars.append("G" if i == 0 else " ")
        return "Tainted: " + "".join(chars)

    def letters(self) -> str:
        return "".join(letter for name, letter in self.table if name in self.flags)


@dataclass(frozen=True)
class Frame:
    """One resolved code address: symbol+offset/size (``%pS``)."""

    symbol: str
    offset: int
    size: int

    def __str__(self) -> str:
        return f"{self.symbol}+{self.offset:#x}/{self.size:#x}"


@dataclass
class LogLine:
    """One printk record: when, which CPU, level, text, the kernel generation that printed it."""

    t: int
    stamp: str
    level: str
    text: str
    cpu: int
    gen: int

    @property
    def line(self) -> str:
        return self.text if self.level == "raw" else f"{self.stamp}{self.text}"


class Printk:
    """The kernel log of all generations of the guest, one :class:`LogLine` per line.

    ``clock`` gives the simulated time (ns); ``sched_clock_base`` is None until time_init,
    then the time sched_clock counts from. ``record`` (if given) puts each line in the trace.
    """

    def __init__(
        self, clock: Callable[[], int], record: Callable[[str, dict[str, Any]], None] | None = None
    ) -> None:
        self.clock = clock
        self.record = record
        self.lines: list[LogLine] = []
        self.gen = 0
        self.sched_clock_base: int | None = None

    def new_generation(self, gen: int) -> None:
        """A new kernel starts: its printk stamps are 0 until its own time_init."""
        self.gen = gen
        self.sched_clock_base = None

    def time_init(self) -> None:
        """``sched_clock_register``: from now on stamps are time since this point."""
        self.sched_clock_base = self.clock()

    def stamp_ns(self) -> int:
        if self.sched_clock_base is None:
            return 0
        return self.clock() - self.sched_clock_base

    def emit(self, level: str, text: str, cpu: int = 0) -> LogLine:
        ns = self.stamp_ns()
        out: list[LogLine] = []
        for piece in text.split("\n"):
            ll = LogLine(self.clock(), print_time(ns), level, piece, cpu, self.gen)
            self.lines.append(ll)
            out.append(ll)
            if self.record is not None:
                self.record(
                    "printk", {"line": ll.line, "level": level, "cpu": cpu, "gen": self.gen}
                )
        return out[-1]

    def info(self, text: str, cpu: int = 0) -> None:
        self.emit("info", text, cpu)

    def warn(self, text: str, cpu: int = 0) -> None:
        self.emit("warn", text, cpu)

    def err(self, text: str, cpu: int = 0) -> None:
        self.emit("err", text, cpu)

    def emerg(self, text: str, cpu: int = 0) -> None:
        self.emit("emerg", text, cpu)

    def raw(self, text: str, cpu: int = 0) -> None:
        """Text without a stamp (the EFI stub's efi_printk, user space on the console)."""
        self.emit("raw", text, cpu)

    def text(self, gen: int | None = None) -> list[str]:
        return [ll.line for ll in self.lines if gen is None or ll.gen == gen]


@dataclass(frozen=True)
class SplatRegs:
    """What a splat shows of the CPU: pstate, pc, lr, sp and x0..x29."""

    pstate: int
    pc: Frame
    lr: Frame
    sp: int
    x: tuple[int, ...]  # x0..x29

    @staticmethod
    def build(pstate: int, pc: Frame, lr: Frame, sp: int, known: dict[int, int]) -> SplatRegs:
        """x0..x29 from the ``known`` registers, the rest :data:`REG_FILLER` + n."""
        x = tuple(known.get(n, REG_FILLER + n) for n in range(30))
        return SplatRegs(pstate, pc, lr, sp, x)


@dataclass
class Splats:
    """WARN and Oops output in v5.15's format, with the taint and oops_id state they share.

    ``oops_id_seed`` gives the 64-bit random value ``init_oops_id`` draws on first use
    (``get_random_bytes``); v5.15 then increments it at every end marker.
    """

    printk: Printk
    taint: Taint
    release: str
    version: str
    oops_id_seed: Callable[[], int]
    hardware_name: str = ""
    oops_id: int = 0
    die_counter: int = 0
    oops_id_style: Literal["random", "zero"] = "random"

    def _end_marker(self, cpu: int) -> None:
        """``print_oops_end_marker`` (v5.15: random id, +1 per marker; 6.x: all zeros)."""
        if self.oops_id_style == "zero":
            self.printk.warn("---[ end trace 0000000000000000 ]---", cpu)
            return
        if not self.oops_id:
            self.oops_id = self.oops_id_seed() & (2**64 - 1) or 1
        else:
            self.oops_id = (self.oops_id + 1) & (2**64 - 1)
        self.printk.warn(f"---[ end trace {self.oops_id:016x} ]---", cpu)

    def cpu_line(self, cpu: int, pid: int, comm: str) -> str:
        """``dump_stack_print_info``: CPU/PID/Comm, taint, release, version up to a space."""
        ver = self.version.split(" ")[0]
        return f"CPU: {cpu} PID: {pid} Comm: {comm} {self.taint.text()} {self.release} {ver}"

    def show_regs(
        self, cpu: int, pid: int, comm: str, regs: SplatRegs, trace: Sequence[Frame]
    ) -> None:
        """arm64 ``show_regs`` = ``__show_regs`` + ``dump_backtrace``."""
        p = self.printk
        p.emit("warn", self.cpu_line(cpu, pid, comm), cpu)
        if self.hardware_name:
            p.emit("warn", f"Hardware name: {self.hardware_name}", cpu)
        p.emit("warn", format_pstate(regs.pstate), cpu)
        p.emit("warn", f"pc : {regs.pc}", cpu)
        p.emit("warn", f"lr : {regs.lr}", cpu)
        p.emit("warn", f"sp : {regs.sp:016x}", cpu)
        for line in format_regs(regs.x):
            p.emit("warn", line, cpu)
        p.emit("warn", "Call trace:", cpu)
        for fr in trace:
            p.emit("warn", f" {fr}", cpu)

    def warn(
        self,
        cpu: int,
        pid: int,
        comm: str,
        file: str,
        line: int,
        regs: SplatRegs,
        trace: Sequence[Frame],
    ) -> None:
        """``report_bug`` for a WARN_ON: cut here, ``__warn``, then TAINT_WARN."""
        p = self.printk
        p.emit("warn", CUT_HERE, cpu)
        p.emit("warn", f"WARNING: CPU: {cpu} PID: {pid} at {file}:{line} {regs.pc}", cpu)
        p.emit("warn", "Modules linked in:", cpu)
        self.show_regs(cpu, pid, comm, regs, trace)
        self._end_marker(cpu)
        self.taint.add("WARN")

    def bug(self, cpu: int, file: str, line: int) -> None:
        """``report_bug`` for a BUG(): cut here and "kernel BUG at %s:%u!"."""
        self.printk.emit("warn", CUT_HERE, cpu)
        self.printk.emit("crit", f"kernel BUG at {file}:{line}!", cpu)

    def die(
        self,
        cpu: int,
        pid: int,
        comm: str,
        what: str,
        err: int,
        regs: SplatRegs,
        trace: Sequence[Frame],
        code: Sequence[int],
        err_fmt: Literal["x", "016lx"] = "x",
    ) -> None:
        """arm64 ``die`` -> ``__die`` (v5.15: ``%x`` error; 6.x: ``%016lx``), then the marker.

        ``code`` is the five instruction words ``dump_kernel_instr`` prints: four before pc
        and the one at pc (in parentheses).
        """
        self.die_counter += 1
        e = f"{err:x}" if err_fmt == "x" else f"{err:016x}"
        p = self.printk
        p.emit("emerg", f"Internal error: {what}: {e} [#{self.die_counter}] SMP", cpu)
        p.emit("warn", "Modules linked in:", cpu)
        self.show_regs(cpu, pid, comm, regs, trace)
        words = [f"{w:08x}" for w in code[:-1]] + [f"({code[-1]:08x})"]
        p.emit("emerg", "Code: " + " ".join(words) + " ", cpu)
        self._end_marker(cpu)
        self.taint.add("DIE")

    def panic(self, cpu: int, reason: str) -> None:
        """``panic``: the message and the end marker line (``---[ end Kernel panic ...]---``)."""
        self.printk.emit("emerg", f"Kernel panic - not syncing: {reason}", cpu)
        self.printk.emit("emerg", f"---[ end Kernel panic - not syncing: {reason} ]---", cpu)
