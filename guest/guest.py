"""The component ``guest``: guest RAM, the CPUs, and the kernel generations that run on them.

Duck-typed scheduler component (``name``, ``start(port)``, ``receive(env, port)``,
``timer(token, port)``). Guest RAM (a :class:`gic.port.Ram` at the machine's RAM base)
answers every ``Mem`` request in every state — also while CPUs wait for replies — with
``Reply(data=...)`` / ``Reply()``, or ``Reply(status=-1, error=...)`` outside RAM. Every write
into RAM, by ``hw``/``xen`` through ``Mem`` or by the guest itself, is checked against the
region map (guest/regions.py); a write into memory that now belongs to something else is a
``corruption`` record (address, size, writer, the modelled function, time, region owner),
put in the trace with ``port.record`` and kept for :meth:`Guest.result`.

Actions: :meth:`Guest.kexec` (or a ``("kexec", {...})`` timer token, or ``actions=[(t,
"kexec")]`` at construction) runs ``kexec -l`` + ``kexec -e`` in CPU0's process context;
:meth:`Guest.cpu_offline` / :meth:`Guest.cpu_online` (tokens ``("cpu_offline", {"cpu": n})``,
``("cpu_online", {"cpu": n})``) write a CPU's sysfs ``online``; :meth:`Guest.set_lpi_property`
(token ``("set_lpi_property", {...})``) rewrites an LPI's property byte with or without INV.

Under Xen (``Guest(name="dom0", host="xen")``, ``virt``): each CPU is a vCPU exchanging
``Exit``/``Entry`` with Xen and holding its list registers (guest/cpu.py), ``Kick`` makes it
exit, passed-through device windows are reached directly, printk text goes to the hvc0
console with CONSOLEIO_write once ``console_init`` registered it (guest/xen_enlighten.py).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from gic.list_registers import ListRegisters
from gic.port import Ram
from guest.bootinfo import REAL_INITRD_SIZE, BootInfo
from guest.cpu import Cost, CpuRuntime, GuestPort, Hypercall
from guest.kernel import BootSpec, Kernel, KernelBug, UndefinedInstruction
from guest.printk import Frame, Printk, SplatRegs
from guest.regions import Owner, RegionMap
from guest.variants import predictions, variant
from transport.messages import Entry, Envelope, Irq, Kick, Mem, Reply

Gen = Generator[Any, Any, Any]

#: DIFFERENCES between what v5.15 prints (the model) and the real 6.1 logs, for a log
#: comparer: each {"real": 6.1 line or None, "ours": v5.15 line(s) or None, "why"}.
#: Addresses, stamps and the oops id are variable: a comparer normalises them first.
DIFFERENCES_5_15_VS_6_1: tuple[dict[str, Any], ...] = (
    {
        "real": "GICv3: GICv3 features: 16 PPIs",
        "ours": ["GICv3: Distributor has no Range Selector support", "GICv3: 16 PPIs implemented"],
        "why": "v5.19 (irqchip/gic-v3: Detect LPI invalidation MMIO registers) merged the RSS "
        "line into 'GICv3 features: %d PPIs%s%s'; v5.15 prints both lines of gic_init_bases / "
        "gic_update_rdist_properties",
    },
    {
        "real": "EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path",
        "ours": ["EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path"],
        "why": "the same line, printed later: v5.15 efi_pe_entry prints 'Generating empty DTB' "
        "before efi_load_initrd; v6.1 loads the initrd in efi_stub_common and prints the DTB "
        "line afterwards in efi_boot_kernel",
    },
    {
        "real": "efi: SMBIOS 3.0=0xbfed0000 MEMATTR=0xbcc31518 ACPI 2.0=0xbc430018 "
        "INITRD=0xbc42ff18 RNG=0xbc43e498 MEMRESERVE=0xbc42ff98 ",
        "ours": [
            "efi: SMBIOS 3.0=0xbfed0000 MEMATTR=0xbcc31518 ACPI 2.0=0xbc430018 "
            "RNG=0xbfbe1018 MEMRESERVE=0xbc42ff18 ",
            "efi: seeding entropy pool",
        ],
        "why": "v5.15's stub passes the initrd in /chosen linux,initrd-* and installs no "
        "LINUX_EFI_INITRD_MEDIA_GUID table, nor does v5.15's common_tables name one (both "
        "f4dc7fffa987, v6.1); v5.15 efi_config_parse_tables prints 'seeding entropy pool' "
        "(dropped in v6.1 by 196dff2712ca). RNG and MEMRESERVE sit in other pool blocks: "
        "v5.15 allocates the seed as EFI_RUNTIME_SERVICES_DATA and takes the loader-data "
        "block v6.1's INITRD table took",
    },
    {
        "real": "Internal error: Oops - Undefined instruction: 0000000002000000 [#1] SMP",
        "ours": [
            "------------[ cut here ]------------",
            "kernel BUG at arch/arm64/kernel/traps.c:498!",
            "Internal error: Oops - BUG: 0 [#1] SMP",
        ],
        "why": "v5.15 do_undefinstr BUG_ON(!user_mode(regs)) for a kernel undef (traps.c:498 in "
        "the 2021 tree; die('Oops - Undefined instruction', regs, esr) with %016lx is v5.19+)",
    },
    {
        "real": "pc : __list_add_valid+0x0/0xb4",
        "ours": ["pc : do_undefinstr+0x114/0x124"],
        "why": "the v5.15 splat shows the BUG site's registers; the faulting function appears in "
        "the call trace after el1h_64_sync",
    },
    {
        "real": "lr : free_lpi_range+0x94/0xf0",
        "ours": ["lr : do_undefinstr+0x10c/0x124"],
        "why": "as above",
    },
    {
        "real": "Code: a2a2a2a2 a2a2a2a2 a2a2a2a2 a2a2a2a2 (a2a2a2a2) ",
        "ours": ["Code: <the BUG site's words> (d4210000) "],
        "why": "dump_kernel_instr of the BUG's pc (the brk); the overwritten bytes are in the "
        "result's kexec.oops.code",
    },
    {
        "real": "---[ end trace 0000000000000000 ]---",
        "ours": ["---[ end trace <random id, +1 per splat> ]---"],
        "why": "v5.15 print_oops_end_marker prints oops_id (removed in 'panic: Remove oops_id')",
    },
    {
        "real": "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 6.1.0-50-arm64 #1  Debian 6.1.176-1",
        "ours": ["CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.15.0 #1"],
        "why": "release and version strings of the modelled build",
    },
    {
        "real": "Linux version 6.1.0-50-arm64 (debian-kernel@lists.debian.org) (gcc-12 ...",
        "ours": ["Linux version 5.15.0 (xen-gic-cosim) #1 SMP"],
        "why": "the modelled build",
    },
)

TIMER_PPI = 27  # ARCH_TIMER_VIRT_IRQ 11 + 16: "GICv3  27 Level  arch_timer"
CNTV_CTL_ENABLE = 1
CNTV_CTL_IMASK = 2
CNTV_CTL_ISTATUS = 4
TIMER_TVAL = 250_000  # 4 ms at 62.5 MHz (HZ = 250)


class Guest:
    """Guest RAM + N CPUs + the kernel generations (see the module docstring)."""

    def __init__(
        self,
        boot: BootInfo,
        *,
        name: str = "guest",
        host: str = "host",
        actions: Sequence[tuple[int, str]] = (),
        kexec_append: str | None = None,
        kexec_initrd_size: int | None = REAL_INITRD_SIZE,
        virt: bool | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.boot = boot
        self.variant = variant(boot.kernel)
        #: dom0 of Xen: exits and entries instead of bus messages (default: host == "xen")
        self.virt = host == "xen" if virt is None else virt
        self.ram = Ram(boot.ram_base, boot.ram_size)
        self.regions = RegionMap(boot.ram_base, boot.ram_size)
        self.printk = Printk(lambda: self.now, self._record_printk)
        self.cpus = [
            CpuRuntime(
                i, self, virt=self.virt,
                lr=ListRegisters(boot.list_registers) if self.virt else None,
            )
            for i in range(boot.cpus)
        ]  # fmt: skip
        # hvc0 (Xen): registered at console_init; the next log line to write, the CPU holding
        # the console lock and the chunks of its current line
        self.console_k: Kernel | None = None
        self.console_next = 0
        self.console_owner: int | None = None
        self.console_pending: list[bytes] = []
        self.console_text: list[str] = []
        self.faults: list[dict[str, Any]] = []
        self.ipis: dict[int, int] = {}
        self.conduit = "hvc"
        self.timer_ppi = TIMER_PPI
        self.kernels: list[Kernel] = []
        self.corruption: list[dict[str, Any]] = []
        self.delivered: dict[int, dict[str, dict[int, int]]] = {}
        self.unexpected_irqs: list[dict[str, Any]] = []
        self.timer_ticks = 0
        self.errors: list[str] = []
        self.actions = list(actions)
        self.kexec_append = kexec_append
        self.kexec_initrd_size = kexec_initrd_size
        self.kexec_state: dict[str, Any] = {"outcome": "none", "corruption": [], "messages": []}
        self.oops: dict[str, Any] | None = None
        self._port: GuestPort | None = None
        self._req_cpu: dict[int, int] = {}
        self._events: set[str] = set()
        self._kexec_log_start: int | None = None
        #: Called (no arguments) each time a kexec begins: the run watches guest RAM from then.
        self.kexec_listeners: list[Callable[[], None]] = []
        #: Fault injection (cosim/faults.py): asked at injectable sites; None = no fault active.
        self.fault_hook: Callable[[str, dict[str, Any]], bool] | None = None

    # -- small services ------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self._port.now if self._port is not None else 0

    @property
    def kernel(self) -> Kernel | None:
        return self.kernels[-1] if self.kernels else None

    def rng_u64(self) -> int:
        rng = getattr(self._port, "rng", None)
        return rng.getrandbits(64) if rng is not None else 0x5EED_0F_0095_1D00

    def port_record(self, kind: str, body: dict[str, Any]) -> None:
        """A trace event; a ``why`` key in ``body`` becomes the record's modelled function."""
        if self._port is not None:
            body = dict(body)
            why = body.pop("why", "")
            self._port.record(kind, body, why=why if isinstance(why, str) else str(why))

    def _record_printk(self, kind: str, body: dict[str, Any]) -> None:
        if self._port is not None:
            self._port.record(kind, body)

    def register_request(self, env_id: int, cpu: int) -> None:
        self._req_cpu[env_id] = cpu

    def event_key(self, k: Kernel, name: str) -> str:
        return f"g{k.gen}:{name}"

    def event_set(self, key: str) -> bool:
        return key in self._events

    def signal(self, key: str) -> None:
        self._events.add(key)
        port = self._port
        assert port is not None
        for c in self.cpus:
            c.on_event(key, port)

    def run_on(self, cpu: int, task: Callable[[], Gen]) -> None:
        """Run ``task`` on ``cpu`` at its next idle point (an IPI's work, an action)."""
        assert self._port is not None
        self.cpus[cpu].run_task(task, self._port)

    # -- the region map and corruption ---------------------------------------------------

    def check_write(
        self,
        addr: int,
        size: int,
        writer: str,
        why: str,
        intended: Owner | None,
        only_dma: bool = False,
    ) -> list[dict[str, Any]]:
        """Report every piece of [addr, addr+size) the write would corrupt."""
        out = []
        gen = self.kernel.gen if self.kernel else 0
        if only_dma:
            bad = [(a, n, o) for a, n, o in self.regions.owners(addr, size) if o.dma]
        else:
            bad = self.regions.conflicts(addr, size, intended)
        for a, n, owner in bad:
            rec = {
                "address": a,
                "size": n,
                "writer": writer,
                "function": why,
                "time": self.now,
                "owner": str(owner),
                "owner_kind": owner.kind,
                "owner_gen": owner.gen,
                "gen": gen,
            }
            if intended is not None:
                rec["intended"] = intended.label
            self.corruption.append(rec)
            if self._kexec_log_start is not None:
                self.kexec_state["corruption"].append(rec)
            self.port_record("corruption", dict(rec))
            out.append(rec)
        return out

    # -- component ------------------------------------------------------------------------

    def start(self, port: GuestPort) -> None:
        self._port = port
        b = self.boot
        for _name, addr, data in b.placements:
            self.ram.write(addr, data)
        for t, what in self.actions:
            port.call_later(t, (what, {}))
        if self.virt:
            port.record("predictions", {"kernel": self.variant.name,
                                        "predictions": predictions(self.variant.name)})  # fmt: skip
        spec = BootSpec(
            firmware=b.firmware,
            dtb_addr=b.dtb_addr,
            kernel_addr=b.kernel_addr,
            initrd=b.initrd,
            via_stub=b.firmware == "efi" and b.efi_stub,
            extra_bootargs=b.bootargs,
        )
        self._boot_generation(spec)

    def receive(self, env: Envelope, port: GuestPort) -> None:
        self._port = port
        msg = env.msg
        try:
            if isinstance(msg, Mem):
                self._on_mem(env, msg, port)
            elif isinstance(msg, Reply):
                cpu = self._req_cpu.pop(env.reply_to, None)
                if cpu is None:
                    port.record("bad-reply", {"src": env.src, "reply_to": env.reply_to})
                    return
                value: Any = msg.value
                if msg.status:
                    port.record(
                        "request-failed", {"cpu": cpu, "error": msg.error, "status": msg.status}
                    )
                self.cpus[cpu].on_reply(value, port)
            elif isinstance(msg, Irq):
                if not 0 <= msg.cpu < len(self.cpus):
                    port.record("bad-irq", {"cpu": msg.cpu})
                    return
                self.cpus[msg.cpu].on_irq(bool(msg.level), port)
            elif isinstance(msg, Entry) and self.virt:
                cpu = self._req_cpu.pop(env.reply_to, None)
                if cpu is None or cpu != msg.vcpu:
                    port.record("bad-entry", {"src": env.src, "reply_to": env.reply_to,
                                              "vcpu": msg.vcpu})  # fmt: skip
                    return
                self.cpus[cpu].on_entry(env, msg, port)
            elif isinstance(msg, Kick) and self.virt:
                if not isinstance(msg.vcpu, int) or not 0 <= msg.vcpu < len(self.cpus):
                    port.record("bad-kick", {"vcpu": msg.vcpu})
                    return
                self.cpus[msg.vcpu].on_kick(port)
            else:
                if env.id:
                    port.reply(
                        env, Reply(status=-1, error=f"guest does not accept {msg.kind} messages")
                    )
                port.record("bad-message", {"kind": msg.kind, "src": env.src})
        except Exception as exc:  # a model bug must not take the run down
            self.errors.append(f"{type(exc).__name__}: {exc}")
            port.record("guest-error", {"error": f"{type(exc).__name__}: {exc}", "kind": msg.kind})

    def timer(self, token: Any, port: GuestPort) -> None:
        self._port = port
        if isinstance(token, tuple) and token and token[0] == "cpu":
            _, cpu, seq = token
            self.cpus[cpu].on_timer(seq, port)
        elif isinstance(token, tuple) and token and token[0] == "boot-next":
            self._boot_generation(token[1])
        elif isinstance(token, tuple) and token and token[0] == "kexec":
            opts = token[1] if len(token) > 1 and isinstance(token[1], dict) else {}
            self.kexec(port, **opts)
        elif isinstance(token, tuple) and token and token[0] in self.ACTIONS:
            opts = token[1] if len(token) > 1 and isinstance(token[1], dict) else {}
            try:
                getattr(self, token[0])(port, **opts)
            except TypeError as e:
                port.record("bad-action", {"action": token[0], "error": str(e)})

    def _on_mem(self, env: Envelope, msg: Mem, port: GuestPort) -> None:
        """Serve a hw/xen RAM access; writes are checked against the region map."""
        if (
            not isinstance(msg.addr, int)
            or not isinstance(msg.size, int)
            or msg.size < 0
            or not self.ram.contains(msg.addr, msg.size)
        ):
            if env.id:
                port.reply(
                    env,
                    Reply(status=-1, error=f"mem [{msg.addr:#x}+{msg.size:#x}] outside guest RAM"),
                )
            return
        if msg.write:
            data = bytes(msg.data)
            if len(data) != msg.size:
                if env.id:
                    port.reply(
                        env,
                        Reply(
                            status=-1, error=f"mem write of {len(data)} bytes, size says {msg.size}"
                        ),
                    )
                return
            self.check_write(msg.addr, msg.size, msg.agent, env.why, None)
            self.ram.write(msg.addr, data)
            if env.id:
                port.reply(env, Reply(), why="guest_ram")
        elif env.id:
            port.reply(env, Reply(data=self.ram.read(msg.addr, msg.size)), why="guest_ram")

    # -- generations ----------------------------------------------------------------------

    def _boot_generation(self, spec: BootSpec) -> Kernel:
        gen = len(self.kernels) + 1
        self.regions.set_generation(gen)
        self.printk.new_generation(gen)
        k = Kernel(self, gen, spec, self.variant)
        self.kernels.append(k)
        # the Image as loaded: its owner and the words the model keeps
        lay = k.image.layout
        self.regions.claim(lay.text, lay.end - lay.text, k.owner("image", "kernel image"))
        if gen == 1:
            for addr, data in k.image.text_words():
                self.ram.write(addr, data)
            for name, addr, data in self.boot.placements:
                self.regions.claim(addr, len(data), k.owner("firmware", f"firmware blob {name}"))
        for c in self.cpus:
            c.stop("off")
        from guest.boot import start_kernel

        assert self._port is not None
        self.cpus[0].start(start_kernel(k), self._port, fresh_interface=gen == 1)
        return k

    def boot_next_generation(
        self,
        k: Kernel,
        *,
        kernel_addr: int,
        dtb_addr: int,
        dtb_size: int,
        initrd: tuple[int, int] | None,
    ) -> None:
        """The relocation code jumps to the new Image on CPU0 (x0 = the DTB)."""
        spec = BootSpec(
            firmware=k.spec.firmware,
            dtb_addr=dtb_addr,
            kernel_addr=kernel_addr,
            initrd=initrd,
            via_stub=False,
            kexec=True,
            dtb_size=dtb_size,
        )
        assert self._port is not None
        port = self._port
        # CPU0 leaves the old kernel now; start the new one from a fresh event
        self.cpus[0].abandon_below()
        port.call_later(0, ("boot-next", spec))

    def kernel_booted(self, k: Kernel) -> None:
        self.port_record("booted", {"gen": k.gen, "cpus": sorted(k.online)})
        if k.gen > 1 and self._kexec_log_start is not None:
            self.kexec_state["outcome"] = "booted"

    def kexec_started(self, k: Kernel) -> None:
        self._kexec_log_start = len(self.printk.lines)
        for listener in self.kexec_listeners:
            listener()

    # -- IRQs -----------------------------------------------------------------------------

    def irq_entry(self, cpu: int) -> Gen:
        k = self.kernel
        gic = k.drivers.get("gic") if k else None
        if k is None or gic is None:
            return self._no_gic(cpu)
        return k.call(cpu, "gic_handle_irq", gic.gic_handle_irq(cpu))

    def _no_gic(self, cpu: int) -> Gen:
        self.unexpected_irqs.append(
            {"cpu": cpu, "intid": None, "time": self.now, "why": "no GIC driver"}
        )
        return
        yield  # pragma: no cover

    def dispatch_irq(self, k: Kernel, cpu: int, irqnr: int) -> Gen:
        """``handle_domain_irq``: the handler of ``irqnr``."""
        yield Cost(2_000)
        its = k.drivers.get("its")
        if irqnr >= 8192 and its is not None and irqnr in its.lpi_owner:
            name, _event = its.lpi_owner[irqnr]
            for drv in k.drivers.get("msi", []):
                if drv.name == name:
                    drv.handle(cpu, irqnr)
                    return
        if irqnr == self.timer_ppi:
            yield from self.arch_timer_handler_virt(k, cpu)
            return
        if k.xen is not None and k.xen.events_irq and irqnr == k.xen.events_irq:
            from guest.xen_enlighten import xen_arm_callback

            yield from xen_arm_callback(k, cpu)
            return
        if self.virt and irqnr < 16:  # ipi_handler -> do_handle_IPI
            self.ipis[irqnr] = self.ipis.get(irqnr, 0) + 1
            return
        rec = {"cpu": cpu, "intid": irqnr, "time": self.now, "gen": k.gen}
        self.unexpected_irqs.append(rec)
        self.port_record("unexpected-irq", rec)

    def arch_timer_starting_cpu(self, k: Kernel, cpu: int) -> Gen:
        """``arch_timer_starting_cpu``: enable the virtual timer PPI, arm the timer."""
        gic = k.drivers.get("gic")
        if gic is None or cpu not in gic.rd_base:
            return
        yield from gic.enable_ppi(cpu, self.timer_ppi)
        yield from k.write_sysreg("CNTV_TVAL_EL0", TIMER_TVAL, "arch_timer_set_next_event_virt")
        yield from k.write_sysreg("CNTV_CTL_EL0", CNTV_CTL_ENABLE, "arch_timer_set_next_event_virt")

    def arch_timer_handler_virt(self, k: Kernel, cpu: int) -> Gen:
        """``arch_timer_handler_virt`` (mask) + the tick's ``set_next_event`` (re-arm)."""
        ctl = yield from k.read_sysreg("CNTV_CTL_EL0", "arch_timer_handler_virt")
        if ctl & CNTV_CTL_ISTATUS:
            yield from k.write_sysreg(
                "CNTV_CTL_EL0", ctl | CNTV_CTL_IMASK, "arch_timer_handler_virt"
            )
            self.timer_ticks += 1
            yield from k.write_sysreg("CNTV_TVAL_EL0", TIMER_TVAL, "arch_timer_set_next_event_virt")
            yield from k.write_sysreg(
                "CNTV_CTL_EL0", CNTV_CTL_ENABLE, "arch_timer_set_next_event_virt"
            )

    def count_delivered(self, gen: int, name: str, event: int, cpu: int) -> None:
        d = self.delivered.setdefault(gen, {}).setdefault(name, {})
        d[event] = d.get(event, 0) + 1

    # -- devices --------------------------------------------------------------------------

    def probe_devices(self, k: Kernel, cpu: int) -> Gen:
        from guest.msi_driver import MsiDriver

        drivers = k.drivers.setdefault("msi", [])
        for dev in self.boot.devices:
            drv = MsiDriver(k, dev)
            drivers.append(drv)
            yield from drv.probe(cpu)
            yield from k.cost("device_probe")

    def start_secondary(self, k: Kernel, cpu: int) -> None:
        from guest.smp import secondary_start_kernel

        assert self._port is not None
        if cpu >= len(self.cpus):
            return
        self.cpus[cpu].start(secondary_start_kernel(k, cpu), self._port)

    # -- exceptions: the Oops -------------------------------------------------------------

    def on_exception(self, cpu: int, exc: BaseException) -> Gen | None:
        k = self.kernel
        if isinstance(exc, UndefinedInstruction) and k is not None:
            return self._oops_undef(k, cpu, exc)
        if isinstance(exc, KernelBug) and k is not None:
            return self._oops_bug(k, cpu, exc)
        self.errors.append(f"cpu{cpu}: {type(exc).__name__}: {exc}")
        if self._port is not None:
            self._port.record("guest-error", {"cpu": cpu, "error": f"{type(exc).__name__}: {exc}"})
        if k is not None:
            k.status = "error"
        return None

    def _oops_bug(self, k: Kernel, cpu: int, exc: KernelBug) -> Gen:
        """``BUG_ON`` in a modelled function: report_bug ("kernel BUG at ..."), arm64 die
        ("Internal error: Oops - BUG: 0"), then the task's death: panic for the idle task or
        init ("Attempted to kill the idle task!" / "Attempted to kill init!")."""
        from guest.image import BRK_SITES

        fn, off = BRK_SITES.get(f"{exc.function}:bug", (exc.function, 0))
        path = exc.frames[:-1] if exc.frames and exc.frames[-1] == fn else exc.frames
        trace = k.backtrace(path, fn, off)
        regs = SplatRegs.build(k.pstate(cpu), trace[0], k.frame(fn, off - 4),
                               k.stack_pointer(cpu), {28: cpu})  # fmt: skip
        base = k.image.addr(fn) + off
        code = [int.from_bytes(self.ram.read(base + 4 * i, 4), "little") for i in range(-4, 1)]
        k.splats.bug(cpu, exc.file, exc.line)
        err_fmt = "x" if k.variant.undef_in_kernel == "bug" else "016lx"
        k.splats.die(cpu, k.pid(cpu), k.comm(cpu), "Oops - BUG", 0, regs, trace, code, err_fmt)
        others = sorted(c for c in k.online if c != cpu)
        if others:
            k.log("SMP: stopping secondary CPUs", cpu, "emerg")
            for c in others:
                self.cpus[c].stop("dead")
        reason = "Attempted to kill the idle task!" if k.pid(cpu) == 0 else "Fatal exception"
        k.splats.panic(cpu, reason)
        k.status = "panic"
        if k.gen > 1 and self._kexec_log_start is not None:
            self.kexec_state["outcome"] = "panic"
        self.port_record("panic", {"cpu": cpu, "gen": k.gen, "reason": reason,
                                   "bug": f"{exc.file}:{exc.line}"})  # fmt: skip
        self.cpus[cpu].state = "dead"
        return
        yield  # pragma: no cover

    def _oops_undef(self, k: Kernel, cpu: int, exc: UndefinedInstruction) -> Gen:
        """An undefined instruction in the kernel: v5.15 BUG in do_undefinstr (or the v5.19+
        die), then do_exit of the idle task -> panic."""
        img = k.image

        def code_at(a):
            return [int.from_bytes(self.ram.read(a + 4 * i, 4), "little") for i in range(-4, 1)]  # noqa: E731

        fault_code = code_at(exc.addr)
        self.oops = {
            "cpu": cpu,
            "function": exc.symbol,
            "address": exc.addr,
            "word": exc.word,
            "code": " ".join(f"{w:08x}" for w in fault_code),
            "gen": k.gen,
        }
        trace_tail = k.backtrace(exc.frames, exc.symbol, 0, at_entry=True)
        caller = exc.frames[-1] if exc.frames else exc.symbol
        from guest.image import CALL_SITES, SYMBOLS

        known = {28: cpu}
        if k.variant.undef_in_kernel == "bug":
            bug_fn, bug_off = "do_undefinstr", 0x114
            k.splats.bug(cpu, "arch/arm64/kernel/traps.c", 498)
            pre = [
                k.frame(bug_fn, bug_off),
                k.frame("el1_undef", CALL_SITES[("el1_undef", "do_undefinstr")]),
                k.frame("el1h_64_sync_handler", CALL_SITES[("el1h_64_sync_handler", "el1_undef")]),
                k.frame("el1h_64_sync", CALL_SITES[("el1h_64_sync", "el1h_64_sync_handler")]),
            ]
            regs = SplatRegs.build(
                k.pstate(cpu), pre[0], k.frame(bug_fn, bug_off - 8), k.stack_pointer(cpu), known
            )
            code = code_at(img.addr(bug_fn) + bug_off)
            k.splats.die(cpu, 0, k.comm(cpu), "Oops - BUG", 0, regs, pre + trace_tail, code, "x")
        else:
            lr = Frame(
                caller,
                CALL_SITES.get((caller, exc.symbol), 0),
                SYMBOLS[caller].size if caller in SYMBOLS else 0,
            )
            regs = SplatRegs.build(k.pstate(cpu), trace_tail[0], lr, k.stack_pointer(cpu), known)
            k.splats.die(
                cpu,
                0,
                k.comm(cpu),
                "Oops - Undefined instruction",
                0x2000000,
                regs,
                trace_tail,
                fault_code,
                "016lx",
            )
        others = sorted(c for c in k.online if c != cpu)
        if others:
            k.log("SMP: stopping secondary CPUs", cpu, "emerg")
            for c in others:
                self.cpus[c].stop("dead")
        k.splats.panic(cpu, "Attempted to kill the idle task!")
        k.status = "panic"
        if k.gen > 1 and self._kexec_log_start is not None:
            self.kexec_state["outcome"] = "panic"
        self.port_record(
            "panic", {"cpu": cpu, "gen": k.gen, "reason": "Attempted to kill the idle task!"}
        )
        self.cpus[cpu].state = "dead"
        return
        yield  # pragma: no cover

    # -- actions --------------------------------------------------------------------------

    def kexec(
        self, port: GuestPort, append: str | None = None, initrd_size: int | None = -1
    ) -> None:
        """The kexec action: ``kexec -l`` then ``kexec -e`` on CPU0 (process context)."""
        from guest.kexec import KexecError, kernel_kexec, kexec_load

        self._port = port
        k = self.kernel
        if k is None or k.status != "booted":
            port.record("kexec-refused", {"reason": f"kernel {k.status if k else 'absent'}"})
            return
        if append is None:
            append = self.kexec_append
        if initrd_size == -1:
            initrd_size = self.kexec_initrd_size

        def task() -> Gen:
            yield from k.cost("kexec_load")
            try:
                segs = kexec_load(k, append, initrd_size)
            except KexecError as e:
                k.log(f"kexec: {e}", 0, "err")
                return
            self.kexec_state["segments"] = [
                {"name": s.name, "base": s.base, "size": s.size} for s in segs
            ]
            port.record("kexec-load", {"segments": self.kexec_state["segments"]})
            yield from kernel_kexec(k, 0, segs)

        self.run_on(0, task)

    ACTIONS = ("cpu_offline", "cpu_online", "set_lpi_property")

    def _action_kernel(self, port: GuestPort, action: str) -> Kernel | None:
        self._port = port
        k = self.kernel
        if k is None or k.status != "booted":
            port.record(f"{action}-refused", {"reason": f"kernel {k.status if k else 'absent'}"})
            return None
        return k

    def _controller(self, k: Kernel, avoid: int) -> int:
        """The CPU whose process context runs an action (the lowest online but ``avoid``)."""
        return min((c for c in k.online if c != avoid), default=0)

    def cpu_offline(self, port: GuestPort, cpu: int) -> None:
        """``echo 0 > /sys/devices/system/cpu/cpuN/online``: ``cpu_down`` (guest/smp.py).
        Under Xen it runs when the controlling vCPU next runs (Xen wakes it)."""
        from guest.smp import cpu_down

        k = self._action_kernel(port, "cpu_offline")
        if k is None:
            return
        if not isinstance(cpu, int) or cpu not in k.online or cpu == 0:
            port.record("cpu_offline-refused", {"cpu": cpu, "reason": "not an online secondary"})
            return
        ctl = self._controller(k, cpu)
        self.run_on(ctl, lambda: k.call(ctl, "cpu_down", cpu_down(k, ctl, cpu)))

    def cpu_online(self, port: GuestPort, cpu: int) -> None:
        """``echo 1 > /sys/devices/system/cpu/cpuN/online``: ``cpu_up`` (PSCI CPU_ON, then the
        new CPU runs ``secondary_start_kernel`` -> ``gic_starting_cpu`` -> ``its_cpu_init``)."""
        from guest.smp import cpu_up

        k = self._action_kernel(port, "cpu_online")
        if k is None:
            return
        if not isinstance(cpu, int) or not 0 < cpu < len(k.possible_cpus) or cpu in k.online:
            port.record("cpu_online-refused", {"cpu": cpu, "reason": "not an offline possible CPU"})
            return
        ctl = self._controller(k, cpu)
        self.run_on(ctl, lambda: cpu_up(k, ctl, cpu))

    def set_lpi_property(
        self,
        port: GuestPort,
        devid: int,
        event: int,
        priority: int | None = None,
        enable: bool | None = None,
        inv: bool = True,
    ) -> None:
        """Change the property byte of the LPI of (``devid``, ``event``) as ``irq_set_*`` /
        ``its_mask_irq``/``its_unmask_irq`` would (``lpi_write_config``: priority bits [7:2],
        enable bit 0), followed by its INV (+ SYNC) only if ``inv``: without it the ITS (or
        Xen's vITS) keeps whatever it read before."""
        from guest.irq_gic_v3_its import LPI_PROP_ENABLED

        k = self._action_kernel(port, "set_lpi_property")
        if k is None:
            return
        its = k.drivers.get("its")
        drv = next(
            (d for d in k.drivers.get("msi", [])
             if d.its_dev is not None and devid in (d.its_dev.device_id, d.dev.devid)),
            None,
        )  # fmt: skip
        if its is None or drv is None or not 0 <= event < len(drv.hwirqs):
            port.record("set_lpi_property-refused", {"devid": devid, "event": event,
                                                     "reason": "no such mapped MSI"})  # fmt: skip
            return
        if priority is not None and not 0 <= priority <= 0xFF:
            port.record("set_lpi_property-refused", {"priority": priority,
                                                     "reason": "priority must be 0..255"})  # fmt: skip
            return
        hwirq = drv.hwirqs[event]
        dev = drv.its_dev
        clr = setb = 0
        if priority is not None:
            clr |= 0xFC
            setb |= priority & 0xFC
        if enable is not None:
            clr |= LPI_PROP_ENABLED
            setb |= LPI_PROP_ENABLED if enable else 0

        def task() -> Gen:
            cpu = 0 if 0 in k.online else min(k.online)
            if inv:
                yield from k.call(cpu, "lpi_update_config",
                                  its.lpi_update_config(cpu, dev, hwirq, clr, setb))  # fmt: skip
            else:
                its.lpi_write_config(hwirq, clr, setb)
            port.record("lpi-property", {"devid": devid, "event": event, "lpi": hwirq,
                                         "byte": k.ram_read(its.prop_table_pa + hwirq - 8192, 1)[0],
                                         "inv": inv}, why="lpi_write_config")  # fmt: skip

        self.run_on(0 if 0 in k.online else min(k.online), task)

    # -- fault injection (cosim/faults.py) -------------------------------------------------

    def fault_at(self, site: str, body: dict[str, Any]) -> bool:
        """True when a fault rule fails this site (``maintenance_irq``); never without a plan."""
        return self.fault_hook is not None and bool(self.fault_hook(site, body))

    def fault_task(self, cpu: int, task: Callable[[], Gen]) -> None:
        """Run an injected task (a hostile access) in ``cpu``'s context, as an action."""
        k = self.kernel
        if self._port is None or k is None or cpu not in k.online:
            if self._port is not None:
                self._port.record("fault-refused", {"cpu": cpu, "reason": "CPU not online"})
            return
        self.run_on(cpu, task)

    def fault_panic(self, reason: str) -> None:
        """An injected ``panic(reason)``: the message, the other CPUs stopped, the kernel dead
        (it spins in panic with interrupts off, so its vCPUs make no more requests)."""
        k = self.kernel
        if k is None or k.status == "panic":
            return
        cpu = 0 if 0 in k.online else min(k.online, default=0)
        others = sorted(c for c in k.online if c != cpu)
        # panic(): the message, smp_send_stop's line, the end marker
        self.printk.emit("emerg", f"Kernel panic - not syncing: {reason}", cpu)
        if others:
            self.printk.emit("crit", "SMP: stopping secondary CPUs", cpu)
        self.printk.emit("emerg", f"---[ end Kernel panic - not syncing: {reason} ]---", cpu)
        k.status = "panic"
        if k.gen > 1 and self._kexec_log_start is not None:
            self.kexec_state["outcome"] = "panic"
        self.port_record("panic", {"cpu": cpu, "gen": k.gen, "reason": reason})
        for c in self.cpus:
            c.stop("dead")

    # -- Xen: devices, console, faults -----------------------------------------------------

    def device_component(self, addr: int) -> str | None:
        """The passed-through device whose register window holds ``addr`` (Xen only)."""
        for d in self.boot.devices:
            if d.window <= addr < d.window + d.window_size:
                return d.component_name
        return None

    def console_register(self, k: Kernel) -> None:
        """``register_console(hvc0)`` with CON_PRINTBUFFER: the log is replayed from the start
        of this kernel's lines."""
        self.console_k = k
        self.console_next = next(
            (i for i, ll in enumerate(self.printk.lines) if ll.gen == k.gen), len(self.printk.lines)
        )

    def console_chunk(self, cpu: int) -> Hypercall | None:
        """The next CONSOLEIO_write of ``cpu`` if it holds (or can take) the console lock."""
        k = self.console_k
        if k is None or k is not self.kernel or k.xen is None:
            return None
        if self.console_owner is not None and self.console_owner != cpu:
            if self.cpus[self.console_owner].state in ("off", "dead"):
                self.console_owner, self.console_pending = None, []
            else:
                return None
        while not self.console_pending:
            lines = self.printk.lines
            while self.console_next < len(lines) and (
                lines[self.console_next].gen != k.gen or lines[self.console_next].level == "raw"
            ):
                self.console_next += 1
            if self.console_next >= len(lines):
                self.console_owner = None  # console_unlock: nothing left
                return None
            line = lines[self.console_next].line
            self.console_next += 1
            self.console_text.append(line)
            from guest.xen_enlighten import hvc_chunks  # here: most calls have nothing to write

            self.console_pending = hvc_chunks((line + "\n").encode())
        from guest.xen_enlighten import console_write_call

        self.console_owner = cpu
        return console_write_call(k, cpu, self.console_pending.pop(0))

    def vcpu_fault(self, cpu: int, what: str, body: dict[str, Any]) -> None:
        """Xen injected an exception the modelled kernel does not handle: record it (the
        real kernel would take it as an undefined instruction or external abort)."""
        rec = {"cpu": cpu, "what": what, "time": self.now, **body}
        self.faults.append(rec)
        self.port_record("vcpu-fault", rec)

    # -- result ---------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        k = self.kernel
        warnings = [w for kk in self.kernels for w in kk.warnings]
        msgs: list[str] = []
        if self._kexec_log_start is not None:
            msgs = [ll.line for ll in self.printk.lines[self._kexec_log_start :]]
        kexec = dict(self.kexec_state)
        kexec["messages"] = msgs
        kexec["corruption"] = list(self.kexec_state["corruption"])
        if self.oops is not None and self.oops.get("gen", 0) > 1:
            kexec["oops"] = dict(self.oops)
        delivered = {
            name: {str(ev): n for ev, n in sorted(vecs.items())}
            for gen in sorted(self.delivered)
            for name, vecs in self.delivered[gen].items()
        }
        return {
            "log": self.printk.text(),
            "warnings": [
                {kk: w[kk] for kk in ("cpu", "file", "line", "function")} for w in warnings
            ],
            "lpis_delivered": delivered,
            "lpis_delivered_total": sum(
                n for g in self.delivered.values() for v in g.values() for n in v.values()
            ),
            "lpis_delivered_by_gen": {
                str(gen): {name: sum(v.values()) for name, v in d.items()}
                for gen, d in sorted(self.delivered.items())
            },
            "unexpected_irqs": list(self.unexpected_irqs),
            "timer_ticks": self.timer_ticks,
            "kexec": kexec,
            "corruption": list(self.corruption),
            "taint": k.taint.text() if k else "Not tainted",
            "taint_letters": k.taint.letters() if k else "",
            "generations": [
                {
                    "gen": kk.gen,
                    "status": kk.status,
                    "kernel_addr": kk.spec.kernel_addr,
                    "dtb_addr": kk.spec.dtb_addr,
                    "initrd": list(kk.spec.initrd) if kk.spec.initrd else None,
                    "cpus_online": sorted(kk.online),
                    "warnings": len(kk.warnings),
                    "taint": kk.taint.text(),
                }
                for kk in self.kernels
            ],
            "errors": list(self.errors),
            "predictions": predictions(self.variant.name),
            **({"xen": self._xen_result()} if self.virt else {}),
        }

    def _xen_result(self) -> dict[str, Any]:
        k = self.kernel
        x = k.xen if k is not None else None
        calls: dict[str, int] = {}
        for c in x.calls if x is not None else ():
            calls[c["function"]] = calls.get(c["function"], 0) + 1
        exits: dict[str, int] = {}
        for c in self.cpus:
            for r, n in c.exits.items():
                exits[r] = exits.get(r, 0) + n
        return {
            "xen_domain": bool(k and k.xen_domain),
            "initial_domain": bool(x and x.initial_domain),
            "version": x.version if x else None,
            "events_irq": x.events_irq if x else 0,
            "vcpus_registered": sorted(x.registered) if x else [],
            "evtchn_upcalls": x.upcalls if x else 0,
            "hypercalls": dict(sorted(calls.items())),
            "hypercall_errors": [c for c in (x.calls if x else []) if c["ret"] < 0],
            "exits": dict(sorted(exits.items())),
            "ipis": {str(i): n for i, n in sorted(self.ipis.items())},
            "console_lines": len(self.console_text),
            "faults": list(self.faults),
        }
