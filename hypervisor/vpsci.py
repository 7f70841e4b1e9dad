"""PSCI and SMCCC for dom0's vCPUs over ``HVC #0``: Xen 4.17 xen/arch/arm/vsmc.c
(``vsmccc_handle_call``) and xen/arch/arm/vpsci.c.

Synchronous: no guest memory is touched. :func:`vsmccc_handle_call` returns a
:class:`SmcccResult` with the registers x0..x3 Xen sets and what happens to the caller
(``block`` for CPU_SUSPEND, ``shutdown`` for SYSTEM_OFF/RESET, ``cpu_on`` naming the vCPU
brought up). Functions Xen does not know are answered ``ARM_SMCCC_ERR_UNKNOWN_FUNCTION`` (-1)
with the line ``d0vN Unhandled SMC/HVC: 0x...`` (xen-dom0-dt.log shows two of them).

CPU_ON in this co-simulation: Xen marks the target vCPU up (clears ``_VPF_down``) and answers
the caller PSCI_SUCCESS; the guest model starts the target itself at the entry point it passed,
with x0 = context id, as ``do_common_cpu_on`` would have set them, and Xen accepts the
target's exits from then on. The ``psci`` trace record carries entry point and context id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from transport.abi import (
    ARM_SMCCC_VERSION_FUNC_ID,
    PSCI_0_2_FN64_AFFINITY_INFO,
    PSCI_0_2_FN64_CPU_ON,
    PSCI_0_2_FN_AFFINITY_INFO,
    PSCI_0_2_FN_CPU_OFF,
    PSCI_0_2_FN_CPU_ON,
    PSCI_0_2_FN_CPU_SUSPEND,
    PSCI_0_2_FN_MIGRATE_INFO_TYPE,
    PSCI_0_2_FN_PSCI_VERSION,
    PSCI_0_2_FN_SYSTEM_OFF,
    PSCI_0_2_FN_SYSTEM_RESET,
    PSCI_1_0_FN_PSCI_FEATURES,
    PSCI_RET_ALREADY_ON,
    PSCI_RET_INTERNAL_FAILURE,
    PSCI_RET_INVALID_PARAMS,
    PSCI_RET_NOT_SUPPORTED,
    PSCI_RET_SUCCESS,
)

U32 = 0xFFFF_FFFF
U64 = (1 << 64) - 1

PSCI_0_2_FN64_CPU_SUSPEND = 0xC400_0001
ARM_SMCCC_ARCH_FEATURES_FID = 0x8000_0001
ARM_SMCCC_ARCH_WORKAROUND_1_FID = 0x8000_8000
ARM_SMCCC_ARCH_WORKAROUND_2_FID = 0x8000_7FFF
#: Xen 4.17 answers SMCCC_VERSION with 1.1 (dom0's "psci: SMC Calling Convention v1.1").
ARM_SMCCC_VERSION_1_1 = 0x1_0001
ARM_SMCCC_ERR_UNKNOWN_FUNCTION = -1
ARM_SMCCC_NOT_SUPPORTED = -1
#: PSCI_VERSION(1, 1).
PSCI_VERSION_1_1 = 0x1_0001
PSCI_INVALID_ADDRESS = -9
PSCI_0_2_TOS_MP_OR_NOT_PRESENT = 2
PSCI_0_2_AFFINITY_LEVEL_ON = 0
PSCI_0_2_AFFINITY_LEVEL_OFF = 1
#: PSCI 0.1 function ids Xen gives a DT dom0 (domain_build.c make_psci_node): PSCI_cpu_off,
#: PSCI_cpu_on in the "existing APIs" range 0x00000000..0x0100FFFF of SMCCC.
XEN_PSCI_0_1_CPU_OFF = 0x1
XEN_PSCI_0_1_CPU_ON = 0x2
ARM_SMCCC_RESERVED_RANGE_START = 0x0
ARM_SMCCC_RESERVED_RANGE_END = 0x0100_FFFF

# SMCCC function id fields (ARM DEN 0028).
ARM_SMCCC_OWNER_SHIFT = 24
ARM_SMCCC_OWNER_MASK = 0x3F
ARM_SMCCC_OWNER_ARCH = 0
ARM_SMCCC_OWNER_SIP = 2
ARM_SMCCC_OWNER_STANDARD = 4
ARM_SMCCC_OWNER_HYPERVISOR = 5
ARM_SMCCC_FUNC_MASK = 0xFFFF
PSCI_FNUM_MIN_VALUE = 0
PSCI_FNUM_MAX_VALUE = 0x1F
ARM_SMCCC_CALL_COUNT = 0xFF00
ARM_SMCCC_CALL_UID = 0xFF01
ARM_SMCCC_REVISION = 0xFF03
ARM_SMCCC_FAST_CALL = 1 << 31
ARM_SMCCC_CONV_64 = 1 << 30

#: XEN_SMCCC_UID a71812dc-c698-4369-9acf-79d18ddee667 (public/arch-arm/smccc.h, bytes in
#: XEN_DEFINE_UUID order), the hypervisor service revision 0.1 and function count 3.
XEN_SMCCC_UID = bytes.fromhex("a71812dcc69843699acf79d18ddee667")
XEN_SMCCC_MAJOR_REVISION = 0
XEN_SMCCC_MINOR_REVISION = 1
XEN_SMCCC_FUNCTION_COUNT = 3
#: SSSC_SMCCC_UID f863386f-4b39-4cbd-9220-ce1641e59f6f, revision 0.1, count 3 + 12 PSCI.
SSSC_SMCCC_UID = bytes.fromhex("f863386f4b394cbd9220ce1641e59f6f")
SSSC_SMCCC_MAJOR_REVISION = 0
SSSC_SMCCC_MINOR_REVISION = 1
VPSCI_NR_FUNCS = 12
SSSC_SMCCC_FUNCTION_COUNT = 3 + VPSCI_NR_FUNCS

#: do_psci_1_0_features: the ids answered 0 (PSCI_0_2_FN32_* and FN64_* forms listed).
PSCI_FEATURES_SUPPORTED = frozenset(
    {
        PSCI_0_2_FN_PSCI_VERSION,
        PSCI_0_2_FN_CPU_SUSPEND,
        PSCI_0_2_FN64_CPU_SUSPEND,
        PSCI_0_2_FN_CPU_OFF,
        PSCI_0_2_FN_CPU_ON,
        PSCI_0_2_FN64_CPU_ON,
        PSCI_0_2_FN_AFFINITY_INFO,
        PSCI_0_2_FN64_AFFINITY_INFO,
        PSCI_0_2_FN_MIGRATE_INFO_TYPE,
        PSCI_0_2_FN_SYSTEM_OFF,
        PSCI_0_2_FN_SYSTEM_RESET,
        PSCI_1_0_FN_PSCI_FEATURES,
        ARM_SMCCC_VERSION_FUNC_ID,
    }
)

MPIDR_HWID_MASK = 0xFF_00FF_FFFF
MPIDR_SMP = 1 << 31


def vcpuid_to_vaffinity(vcpuid: int) -> int:
    """Xen vcpuid_to_vaffinity: Aff0 = vcpuid & 0xf, Aff1 = vcpuid >> 4 (bits [15:8])."""
    return ((vcpuid >> 4) & 0xFF) << 8 | (vcpuid & 0xF)


def vaffinity_to_vcpuid(vaff: int) -> int:
    """Xen vaffinity_to_vcpuid: Aff0 | Aff1 << 4 (Aff2 and Aff3 are ignored, as in Xen)."""
    vaff &= MPIDR_HWID_MASK
    return (vaff & 0xFF) | ((vaff >> 8) & 0xFF) << 4


def affinity_mask(level: int) -> int:
    """MPIDR_HWID_MASK & AFFINITY_MASK(level): the affinity bits at or above ``level``."""
    return MPIDR_HWID_MASK & ~((1 << (level * 8)) - 1) & U64


class VcpuTable(Protocol):
    """The vCPU view PSCI needs (implemented by hypervisor/xen.py)."""

    @property
    def max_vcpus(self) -> int: ...

    def is_down(self, vcpu: int) -> bool: ...


@dataclass(slots=True)
class SmcccResult:
    """x0..x3 after the call as 64-bit register values (x0 holds the sign-extended int32
    result: -1 is 0xffffffffffffffff),
    and what happens to the caller: ``block`` (CPU_SUSPEND), ``off`` (CPU_OFF: the vCPU goes
    down, no entry), ``shutdown`` ("poweroff"/"reboot"), ``cpu_on`` (vCPU id brought up,
    with ``entry`` and ``context_id``), ``unhandled`` (the fid Xen logged)."""

    regs: list[int] = field(default_factory=list)
    block: bool = False
    off: bool = False
    shutdown: str = ""
    cpu_on: int | None = None
    entry: int = 0
    context_id: int = 0
    unhandled: bool = False
    call: str = ""


def _fill_uid(uid: bytes) -> list[int]:
    """fill_uid: four bytes per register, first byte in the low bits."""
    return [int.from_bytes(uid[4 * n : 4 * n + 4], "little") for n in range(4)]


def vsmccc_handle_call(table: VcpuTable, vcpu: int, regs: tuple[int, ...]) -> SmcccResult:
    """vsmccc_handle_call for HVC #0 from a 64-bit domain: x0 = function id, x1..x3 args."""
    r = [int(v) & U64 if isinstance(v, int) else 0 for v in tuple(regs)[:8]]
    r += [0] * (8 - len(r))
    out = list(r[:4])
    funcid = r[0] & U32
    res = SmcccResult(regs=out)
    handled = False
    owner = (funcid >> ARM_SMCCC_OWNER_SHIFT) & ARM_SMCCC_OWNER_MASK
    if ARM_SMCCC_RESERVED_RANGE_START <= funcid <= ARM_SMCCC_RESERVED_RANGE_END:
        handled = _do_vpsci_0_1_call(table, vcpu, funcid, r, res)
    elif owner == ARM_SMCCC_OWNER_ARCH:
        handled = _handle_arch(funcid, r, res)
    elif owner == ARM_SMCCC_OWNER_HYPERVISOR:
        handled = _handle_service(funcid, res, XEN_SMCCC_UID, XEN_SMCCC_FUNCTION_COUNT,
                                  XEN_SMCCC_MAJOR_REVISION, XEN_SMCCC_MINOR_REVISION)  # fmt: skip
    elif owner == ARM_SMCCC_OWNER_STANDARD:
        if PSCI_FNUM_MIN_VALUE <= funcid & ARM_SMCCC_FUNC_MASK <= PSCI_FNUM_MAX_VALUE:
            handled = do_vpsci_0_2_call(table, vcpu, funcid, r, res)
        else:
            handled = _handle_service(funcid, res, SSSC_SMCCC_UID, SSSC_SMCCC_FUNCTION_COUNT,
                                      SSSC_SMCCC_MAJOR_REVISION, SSSC_SMCCC_MINOR_REVISION)  # fmt: skip
    if not handled:
        res.unhandled = True
        res.call = f"{funcid:#x}"
        out[0] = ARM_SMCCC_ERR_UNKNOWN_FUNCTION
    res.regs = [v & U64 for v in out]
    return res


def _handle_arch(funcid: int, r: list[int], res: SmcccResult) -> bool:
    """handle_arch: SMCCC_VERSION 1.1, ARCH_FEATURES (no workaround is advertised: the real
    log's "No support for ARM_SMCCC_ARCH_WORKAROUND_1")."""
    if funcid == ARM_SMCCC_VERSION_FUNC_ID:
        res.regs[0] = ARM_SMCCC_VERSION_1_1
        res.call = "SMCCC_VERSION"
        return True
    if funcid == ARM_SMCCC_ARCH_FEATURES_FID:
        res.regs[0] = ARM_SMCCC_NOT_SUPPORTED
        res.call = "SMCCC_ARCH_FEATURES"
        return True
    if funcid in (ARM_SMCCC_ARCH_WORKAROUND_1_FID, ARM_SMCCC_ARCH_WORKAROUND_2_FID):
        res.call = "SMCCC_ARCH_WORKAROUND"
        return True
    return False


def _handle_service(
    funcid: int, res: SmcccResult, uid: bytes, count: int, major: int, minor: int
) -> bool:
    """handle_hypervisor / handle_sssc: CALL_COUNT, CALL_UID, REVISION of a service."""
    fn = funcid & ARM_SMCCC_FUNC_MASK
    if not funcid & ARM_SMCCC_FAST_CALL or funcid & ARM_SMCCC_CONV_64:
        return False
    if fn == ARM_SMCCC_CALL_COUNT:
        res.regs[0] = count
    elif fn == ARM_SMCCC_CALL_UID:
        res.regs[:4] = _fill_uid(uid)
    elif fn == ARM_SMCCC_REVISION:
        res.regs[0], res.regs[1] = major, minor
    else:
        return False
    return True


def _do_vpsci_0_1_call(
    table: VcpuTable, vcpu: int, fid: int, r: list[int], res: SmcccResult
) -> bool:
    """do_vpsci_0_1_call: Xen's PSCI 0.1 ids (cpu_off = 1, cpu_on = 2)."""
    if fid == XEN_PSCI_0_1_CPU_OFF:
        res.regs[0] = PSCI_RET_SUCCESS
        res.off = not table.is_down(vcpu)
        res.call = "CPU_OFF(0.1)"
        return True
    if fid == XEN_PSCI_0_1_CPU_ON:
        ret = _do_common_cpu_on(table, r[1] & U32, r[2], 0, res)
        if ret in (PSCI_RET_ALREADY_ON, PSCI_INVALID_ADDRESS):
            ret = PSCI_RET_INVALID_PARAMS
            res.cpu_on = None
        res.regs[0] = ret
        res.call = "CPU_ON(0.1)"
        return True
    return False


def _do_common_cpu_on(
    table: VcpuTable, target_cpu: int, entry: int, context_id: int, res: SmcccResult
) -> int:
    """do_common_cpu_on: vCPU by virtual affinity; INVALID_PARAMS if none, INVALID_ADDRESS
    for a Thumb entry in a 64-bit domain, ALREADY_ON unless the vCPU is down."""
    vcpuid = vaffinity_to_vcpuid(target_cpu)
    if vcpuid >= table.max_vcpus:
        return PSCI_RET_INVALID_PARAMS
    if entry & 1:
        return PSCI_INVALID_ADDRESS
    if not table.is_down(vcpuid):
        return PSCI_RET_ALREADY_ON
    res.cpu_on = vcpuid
    res.entry = entry
    res.context_id = context_id
    return PSCI_RET_SUCCESS


def do_vpsci_0_2_call(
    table: VcpuTable, vcpu: int, fid: int, r: list[int], res: SmcccResult
) -> bool:
    """do_vpsci_0_2_call: PSCI 1.1 as Xen 4.17 implements it for guests."""
    if fid == PSCI_0_2_FN_PSCI_VERSION:
        res.regs[0], res.call = PSCI_VERSION_1_1, "PSCI_VERSION"
    elif fid == PSCI_0_2_FN_CPU_OFF:
        res.regs[0], res.call = PSCI_RET_SUCCESS, "CPU_OFF"
        res.off = not table.is_down(vcpu)
    elif fid == PSCI_0_2_FN_MIGRATE_INFO_TYPE:
        res.regs[0], res.call = PSCI_0_2_TOS_MP_OR_NOT_PRESENT, "MIGRATE_INFO_TYPE"
    elif fid in (PSCI_0_2_FN_SYSTEM_OFF, PSCI_0_2_FN_SYSTEM_RESET):
        off = fid == PSCI_0_2_FN_SYSTEM_OFF
        res.shutdown = "poweroff" if off else "reboot"
        res.call = "SYSTEM_OFF" if off else "SYSTEM_RESET"
        res.regs[0] = PSCI_RET_INTERNAL_FAILURE
    elif fid in (PSCI_0_2_FN_CPU_ON, PSCI_0_2_FN64_CPU_ON):
        res.regs[0] = _do_common_cpu_on(table, r[1], r[2], r[3], res)
        res.call = "CPU_ON"
    elif fid in (PSCI_0_2_FN_CPU_SUSPEND, PSCI_0_2_FN64_CPU_SUSPEND):
        # "Power off requests are treated as performing standby": block unless an event
        # is pending, then return SUCCESS.
        res.regs[0], res.call, res.block = PSCI_RET_SUCCESS, "CPU_SUSPEND", True
    elif fid in (PSCI_0_2_FN_AFFINITY_INFO, PSCI_0_2_FN64_AFFINITY_INFO):
        res.regs[0] = do_psci_0_2_affinity_info(table, r[1], r[2] & U32)
        res.call = "AFFINITY_INFO"
    elif fid == PSCI_1_0_FN_PSCI_FEATURES:
        fn = r[1] & U32
        res.regs[0] = PSCI_RET_SUCCESS if fn in PSCI_FEATURES_SUPPORTED else PSCI_RET_NOT_SUPPORTED
        res.call = "PSCI_FEATURES"
    else:
        return False
    return True


def do_psci_0_2_affinity_info(table: VcpuTable, target_affinity: int, lowest_level: int) -> int:
    """ON if any up vCPU's vMPIDR matches ``target_affinity`` at ``lowest_level`` and above."""
    if lowest_level >= 4:
        return PSCI_RET_INVALID_PARAMS
    tmask = affinity_mask(lowest_level)
    target_affinity &= tmask
    for v in range(table.max_vcpus):
        vmpidr = MPIDR_SMP | vcpuid_to_vaffinity(v)
        if vmpidr & tmask == target_affinity and not table.is_down(v):
            return PSCI_0_2_AFFINITY_LEVEL_ON
    return PSCI_0_2_AFFINITY_LEVEL_OFF


__all__ = [
    "ARM_SMCCC_ERR_UNKNOWN_FUNCTION",
    "ARM_SMCCC_VERSION_1_1",
    "PSCI_VERSION_1_1",
    "SmcccResult",
    "VcpuTable",
    "do_vpsci_0_2_call",
    "vaffinity_to_vcpuid",
    "vcpuid_to_vaffinity",
    "vsmccc_handle_call",
]
