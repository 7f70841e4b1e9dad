"""Calling conventions both sides of an exit agree on: PSCI/SMCCC ids, Xen hypercalls, errnos.

These numbers are the ABI between guest and host (xen/include/public/xen.h,
include/uapi/linux/psci.h, xen/include/public/errno.h), so they live with the
wire rather than on either side.
"""

from __future__ import annotations

#: HVC immediate of a Xen hypercall on Arm (xen/include/public/arch-arm.h XEN_HYPERCALL_TAG).
XEN_HYPERCALL_TAG = 0xEA1
#: HVC/SMC immediate of an SMCCC call (PSCI).
SMCCC_IMM = 0

# PSCI function ids (include/uapi/linux/psci.h), SMC64 forms where they exist.
PSCI_0_2_FN_PSCI_VERSION = 0x84000000
PSCI_0_2_FN_CPU_SUSPEND = 0x84000001
PSCI_0_2_FN_CPU_OFF = 0x84000002
PSCI_0_2_FN_CPU_ON = 0x84000003
PSCI_0_2_FN64_CPU_ON = 0xC4000003
PSCI_0_2_FN_AFFINITY_INFO = 0x84000004
PSCI_0_2_FN64_AFFINITY_INFO = 0xC4000004
PSCI_0_2_FN_MIGRATE_INFO_TYPE = 0x84000006
PSCI_0_2_FN_SYSTEM_OFF = 0x84000008
PSCI_0_2_FN_SYSTEM_RESET = 0x84000009
PSCI_1_0_FN_PSCI_FEATURES = 0x8400000A
ARM_SMCCC_VERSION_FUNC_ID = 0x80000000

PSCI_FUNCTIONS: dict[int, str] = {
    PSCI_0_2_FN_PSCI_VERSION: "PSCI_VERSION",
    PSCI_0_2_FN_CPU_SUSPEND: "CPU_SUSPEND",
    PSCI_0_2_FN_CPU_OFF: "CPU_OFF",
    PSCI_0_2_FN_CPU_ON: "CPU_ON",
    PSCI_0_2_FN64_CPU_ON: "CPU_ON",
    PSCI_0_2_FN_AFFINITY_INFO: "AFFINITY_INFO",
    PSCI_0_2_FN64_AFFINITY_INFO: "AFFINITY_INFO",
    PSCI_0_2_FN_MIGRATE_INFO_TYPE: "MIGRATE_INFO_TYPE",
    PSCI_0_2_FN_SYSTEM_OFF: "SYSTEM_OFF",
    PSCI_0_2_FN_SYSTEM_RESET: "SYSTEM_RESET",
    PSCI_1_0_FN_PSCI_FEATURES: "PSCI_FEATURES",
    ARM_SMCCC_VERSION_FUNC_ID: "SMCCC_VERSION",
}

# PSCI return codes.
PSCI_RET_SUCCESS = 0
PSCI_RET_NOT_SUPPORTED = -1
PSCI_RET_INVALID_PARAMS = -2
PSCI_RET_DENIED = -3
PSCI_RET_ALREADY_ON = -4
PSCI_RET_ON_PENDING = -5
PSCI_RET_INTERNAL_FAILURE = -6

# Xen hypercall numbers (xen/include/public/xen.h).
__HYPERVISOR_set_trap_table = 0
__HYPERVISOR_platform_op = 7
__HYPERVISOR_memory_op = 12
__HYPERVISOR_multicall = 13
__HYPERVISOR_xen_version = 17
__HYPERVISOR_console_io = 18
__HYPERVISOR_grant_table_op = 20
__HYPERVISOR_vm_assist = 21
__HYPERVISOR_vcpu_op = 24
__HYPERVISOR_xsm_op = 27
__HYPERVISOR_sched_op = 29
__HYPERVISOR_event_channel_op = 32
__HYPERVISOR_physdev_op = 33
__HYPERVISOR_hvm_op = 34
__HYPERVISOR_sysctl = 35
__HYPERVISOR_domctl = 36
__HYPERVISOR_kexec_op = 37
__HYPERVISOR_argo_op = 39
__HYPERVISOR_dm_op = 41
__HYPERVISOR_hypfs_op = 42

HYPERCALLS: dict[int, str] = {
    v: k.removeprefix("__HYPERVISOR_")
    for k, v in dict(globals()).items()
    if k.startswith("__HYPERVISOR_")
}

# Xen errno values (xen/include/public/errno.h), returned negated in x0.
XEN_EPERM = 1
XEN_ENOENT = 2
XEN_EIO = 5
XEN_E2BIG = 7
XEN_ENOMEM = 12
XEN_EACCES = 13
XEN_EFAULT = 14
XEN_EBUSY = 16
XEN_EEXIST = 17
XEN_ENODEV = 19
XEN_EINVAL = 22
XEN_ENOSPC = 28
XEN_ENOSYS = 38
XEN_EOPNOTSUPP = 95


def u64(value: int) -> int:
    """A signed return value as the 64-bit register holds it."""
    return value & 0xFFFF_FFFF_FFFF_FFFF


def s64(value: int) -> int:
    """A 64-bit register value read as signed."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >> 63 else value


# What an Entry's ``value`` says about the exit it answers (the virtualisation protocol).
#: The exit was handled; the vCPU resumes after the trapping instruction.
ENTRY_OK = 0
#: Xen injected an undefined-instruction exception (e.g. an HVC with an unknown immediate).
ENTRY_UNDEF = -1
#: Xen injected a data abort (an access Xen does not emulate).
ENTRY_DABT = -2
