"""``cosim compare-log MODEL_LOG REAL_LOG``: the EFI, ACPI, GIC, ITS and LPI lines of two kernel logs.

Both logs are cut into kernels (a kexec log holds two), the lines in scope are
kept, addresses and time stamps are masked, and each kernel's lines are aligned
side by side. A difference that is a documented v5.15 (the model) / v6.1 (the
real boots) difference is shown as such and does not count. Exit 1 when any
other difference remains. A user can run it against their own dmesg.

Scope, as line patterns on the message text after the time stamp (a line not in
scope is ignored on both sides):

* ``EFI stub: ...`` and ``efi: ...`` — the firmware hand-over;
* ``ACPI: FACP|APIC|IORT|GTDT|MCFG <addr> <size> (...)`` — the headers of the
  tables the GIC, ITS and timer code read. RSDP/XSDT list every table the
  firmware has (DSDT, PPTT, SPCR, DBG2 are not modelled), so they are out of scope;
* ``GICv3: ...``, ``GIC: ...``, ``ITS ...``, ``ITS@...``, ``Platform MSI: ...``,
  ``PCI/MSI: ...`` and any other line mentioning ``LPI``;
* ``kexec_core: ...`` and ``Bye!``, which delimit a kexec.

A real log's ``===== ... dmesg =====`` sections repeat the console and are skipped.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
IN_SCOPE = re.compile(
    r"^(EFI stub: |efi: |ACPI: (FACP|APIC|IORT|GTDT|MCFG) 0x|GICv3: |GIC: |ITS[ @]|Platform MSI: "
    r"|PCI/MSI: |kexec_core: |Bye!)|LPI"
)
#: A kernel starts here (the EFI stub's first line belongs to the kernel it starts).
KERNEL_START = re.compile(r"^(EFI stub: Booting Linux Kernel|Booting Linux on physical CPU)")
SECTION = re.compile(r"^===== (.*) =====\s*$")
ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{5,16}\b|(?<=@)[0-9a-fA-F]{5,16}\b|\b[0-9a-fA-F]{8,16}\b")


def normalise(text: str) -> str:
    """Mask addresses (long hex numbers, ``@...``) so two boots compare by content."""
    return ADDRESS.sub("<addr>", text.rstrip())


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based line number in its file
    text: str  # message text without the time stamp

    @property
    def key(self) -> str:
        return normalise(self.text)


@dataclass(frozen=True, slots=True)
class Allowance:
    """A documented difference: the real (6.1) line ``real`` stands where the model prints ``ours``."""

    real: str
    ours: tuple[str, ...]
    why: str

    @property
    def real_key(self) -> str:
        return normalise(self.real)

    @property
    def our_keys(self) -> tuple[str, ...]:
        return tuple(normalise(x) for x in self.ours)


def kernels(lines: Iterable[str]) -> list[list[Line]]:
    """The in-scope lines of each kernel in a log, dmesg dumps skipped."""
    out: list[list[Line]] = []
    in_dmesg = False
    for n, raw in enumerate(lines, 1):
        raw = raw.rstrip("\n")
        sec = SECTION.match(raw)
        if sec:
            in_dmesg = "dmesg" in sec.group(1)
            continue
        if in_dmesg:
            continue
        text = STAMP.sub("", raw)
        if KERNEL_START.match(text) and (not out or not _starts_kernel(out[-1])):
            out.append([])
        if not IN_SCOPE.search(text):
            continue
        if not out:
            out.append([])
        out[-1].append(Line(n, text))
    return out


def _starts_kernel(kernel: list[Line]) -> bool:
    """True while a kernel holds only its EFI stub lines (the stub and the kernel are one boot)."""
    return bool(kernel) and all(x.text.startswith("EFI stub: ") for x in kernel)


@dataclass(frozen=True, slots=True)
class Row:
    mark: str  # " " same, "!" differ, "<" model only, ">" real only, "~" documented difference
    model: Line | None
    real: Line | None
    why: str = ""


def align(model: Sequence[Line], real: Sequence[Line], allow: Sequence[Allowance]) -> list[Row]:
    rows: list[Row] = []
    sm = difflib.SequenceMatcher(a=[x.key for x in model], b=[x.key for x in real], autojunk=False)
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            rows += [Row(" ", model[a0 + i], real[b0 + i]) for i in range(a1 - a0)]
        else:
            rows += _judge(list(model[a0:a1]), list(real[b0:b1]), allow)
    return _pair_moved(rows, allow)


def _pair_moved(rows: list[Row], allow: Sequence[Allowance]) -> list[Row]:
    """A line both kernels print, at different places (a documented reorder), leaves one
    model-only and one real-only row in different blocks: pair them as documented."""
    for a in allow:
        if len(a.our_keys) != 1:
            continue
        ri = next(
            (
                i
                for i, r in enumerate(rows)
                if r.mark == ">" and r.real and r.real.key == a.real_key
            ),
            None,
        )
        mi = next(
            (
                i
                for i, r in enumerate(rows)
                if r.mark == "<" and r.model and r.model.key == a.our_keys[0]
            ),
            None,
        )
        if ri is None or mi is None:
            continue
        rows[mi] = Row("~", rows[mi].model, rows[ri].real, a.why)
        del rows[ri]
    return rows


def _judge(ms: list[Line], rs: list[Line], allow: Sequence[Allowance]) -> list[Row]:
    """Rows for a block where the logs differ: documented differences first, the rest flagged."""
    rows: list[Row] = []
    for a in allow:
        ri = next((i for i, r in enumerate(rs) if r.key == a.real_key), None)
        if ri is None:
            continue
        keys = [m.key for m in ms]
        n = len(a.our_keys)
        mi = next((i for i in range(len(ms) - n + 1) if tuple(keys[i : i + n]) == a.our_keys), None)
        if mi is None:
            continue
        ours = ms[mi : mi + n]
        rows.append(Row("~", ours[0], rs.pop(ri), a.why))
        rows += [Row("~", m, None, a.why) for m in ours[1:]]
        del ms[mi : mi + n]
    for i in range(max(len(ms), len(rs))):
        m = ms[i] if i < len(ms) else None
        r = rs[i] if i < len(rs) else None
        rows.append(Row("!" if m and r else ("<" if r is None else ">"), m, r))
    return rows


def default_allowances() -> list[Allowance]:
    """The documented v5.15/v6.1 differences the guest model lists."""
    from guest.guest import DIFFERENCES_5_15_VS_6_1

    return [Allowance(d["real"], tuple(d["ours"]), d["why"]) for d in DIFFERENCES_5_15_VS_6_1]


def compare(
    model_lines: Iterable[str], real_lines: Iterable[str], allow: Sequence[Allowance] | None = None
) -> list[tuple[int, list[Row]]]:
    allow = default_allowances() if allow is None else allow
    mk, rk = kernels(model_lines), kernels(real_lines)
    out = []
    for i in range(max(len(mk), len(rk))):
        out.append((i, align(mk[i] if i < len(mk) else [], rk[i] if i < len(rk) else [], allow)))
    return out


def render(result: list[tuple[int, list[Row]]], out: TextIO, width: int = 78) -> int:
    """Print the side-by-side table; return the number of undocumented differences."""
    bad = 0
    for i, rows in result:
        out.write(f"--- kernel {i + 1} ---\n")
        for row in rows:
            left = row.model.text if row.model else ""
            right = row.real.text if row.real else ""
            out.write(f"{row.mark} {left[:width]:<{width}} | {right}\n")
            if row.mark == "~":
                if row.real is not None:
                    out.write(f"  {'':<{width}}   (documented: {row.why})\n")
            elif row.mark != " ":
                bad += 1
    return bad


def main(
    model_path: str, real_path: str, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    texts = []
    for p in (model_path, real_path):
        try:
            texts.append(Path(p).read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError as exc:
            err.write(f"cosim compare-log: {p}: {exc.strerror or exc}\n")
            return 2
    result = compare(texts[0], texts[1])
    bad = render(result, out)
    if not any(rows for _, rows in result):
        err.write("cosim compare-log: no EFI, ACPI, GIC, ITS or LPI lines in either log\n")
        return 1
    out.write(f"{bad} difference(s)\n")
    return 1 if bad else 0
