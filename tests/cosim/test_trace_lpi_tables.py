"""``cosim trace lpi-tables``: who touched each guest LPI/ITS table, on real runs.

Every expected count is derived from the trace's own records (the decoded ITS commands, the
register writes, the ``lpi``/``ack`` events), with the rule of the modelled code that makes
the access: QEMU 7.2 (gic/its.py, gic/redistributor.py docstrings) on bare metal, Xen 4.17
(reference/xen-arm-vgic.md §3, §4.3, §4.4) under Xen. One run per scenario (module fixtures).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cosim.run import execute
from cosim.scenario import load, loads
from cosim.trace_cli import run
from cosim.trace_decode import Decoder
from cosim.trace_lpi_tables import AGENTS, TableLedger, lpi_tables
from tests.cosim.test_trace_synth import GICR_BASE, GICR_STRIDE, Synth
from transport.messages import Exit, Mem, Reply
from transport.trace import TraceReader, TraceRecord

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
ENABLE_LPIS = 1
PA_MASK = ((1 << 52) - 1) & ~0xFFF
KEXEC_AT = "150ms"


def _xen4(kexec: bool = False) -> str:
    """configs/xen-dom0-acpi.toml with 4 vCPUs (the 32-vCPU run is slow), optionally a kexec."""
    text = (CONFIGS / "xen-dom0-acpi.toml").read_text()
    text = text.replace("pcpus = 32", "pcpus = 4").replace("vcpus = 32", "vcpus = 4")
    assert "vcpus = 4" in text and "pcpus = 4" in text
    if kexec:
        text = text.replace('duration = "400ms"', 'duration = "260ms"')
        text += f'\n[[actions]]\nat = "{KEXEC_AT}"\ndo = "kexec"\n'
    return text


def _trace(tmp_path_factory: pytest.TempPathFactory, name: str, text: str | None = None) -> Path:
    path = tmp_path_factory.mktemp(name) / f"{name}.trace"
    sc = load(CONFIGS / f"{name}.toml") if text is None else loads(text, f"{name}.toml")
    execute(sc, str(path))
    return path


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trace(tmp_path_factory, "baremetal-dt")


@pytest.fixture(scope="module")
def xen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trace(tmp_path_factory, "xen-dom0-acpi-4", _xen4())


@pytest.fixture(scope="module")
def xen_kexec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trace(tmp_path_factory, "xen-dom0-acpi-4-kexec", _xen4(kexec=True))


@pytest.fixture(scope="module")
def no_its(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trace(tmp_path_factory, "xen-dom0-no-its")


# -- what the trace itself says (independent of the tool) -----------------------------------


@dataclass
class Facts:
    """One pass over a trace: register writes, ITS commands, interrupts, printk lines."""

    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # (t, what, ...)
    commands: list[dict[str, Any]] = field(default_factory=list)
    lpis: list[dict[str, Any]] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    mem: list[TraceRecord] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    first_enable: int | None = None
    kexec_t: int | None = None

    def n_cmd(self, name: str, **match: Any) -> int:
        return sum(
            1
            for c in self.commands
            if c["its_cmd"] == name and all(c.get(k) == v for k, v in match.items())
        )

    def writes(self, reg: str) -> list[dict[str, Any]]:
        return [e for _, what, e in self.events if what == "reg" and e["reg"] == reg]


@functools.lru_cache(maxsize=8)
def facts(path: Path) -> Facts:
    """(Cached: every test of a module reads the same few traces.)"""
    reader = TraceReader(path)
    dec = Decoder(reader.header)
    f = Facts()
    for rec in reader:
        fields = dec.fields(rec)
        body = rec.body
        reg = fields.get("reg")
        write = (rec.kind == "mmio" or body.get("reason") == "dabt") and body.get("write")
        if isinstance(reg, str) and write:
            e = {"reg": reg, "rdist": fields.get("rdist"), "value": body["value"], "t": rec.t}
            f.events.append((rec.t, "reg", e))
            if reg == "GICR_CTLR" and body["value"] & ENABLE_LPIS and f.first_enable is None:
                f.first_enable = rec.t
        if "its_cmd" in fields:
            c = dict(fields, t=rec.t)
            f.commands.append(c)
            f.events.append((rec.t, "cmd", c))
        if rec.kind == "lpi":
            f.lpis.append(body)
        elif rec.kind == "ack" and body.get("intid", 0) >= 8192:
            f.acks.append(body)
        elif rec.kind == "mem":
            f.mem.append(rec)
        elif rec.kind == "printk":
            f.lines.append(body["line"])
        elif rec.kind == "kexec-load" and f.kexec_t is None:
            f.kexec_t = rec.t
    assert reader.problem is None
    return f


@functools.lru_cache(maxsize=8)
def tables(path: Path) -> list[dict[str, Any]]:
    v = lpi_tables(str(path))
    assert not v.partial
    return v.as_dict()["tables"]


def only(ts: list[dict[str, Any]], table: str, **match: Any) -> dict[str, Any]:
    found = [t for t in ts if t["table"] == table and all(t[k] == v for k, v in match.items())]
    assert len(found) == 1, (table, match, found)
    return found[0]


def fn(t: dict[str, Any], agent: str) -> dict[str, int]:
    return t["agents"][agent]["functions"]


def untouched(t: dict[str, Any], agent: str) -> bool:
    a = t["agents"][agent]
    return a == {"reads": 0, "writes": 0, "bytes": 0, "first": None, "last": None, "functions": {}}


# -- bare metal -----------------------------------------------------------------------------


def test_bare_metal_tables_are_where_the_registers_put_them(bare: Path) -> None:
    f, ts = facts(bare), tables(bare)
    props = {w["value"] & PA_MASK for w in f.writes("GICR_PROPBASER")}
    assert len(props) == 1
    prop = only(ts, "property")
    assert prop["base"] == props.pop() and prop["cpu"] is None
    assert prop["cpus"] == [w["rdist"] for w in f.writes("GICR_PROPBASER")]
    assert prop["size"] == (1 << ((f.writes("GICR_PROPBASER")[0]["value"] & 0x1F) + 1)) - 8192
    for w in f.writes("GICR_PENDBASER"):
        pend = only(ts, "pending", cpu=w["rdist"])
        assert pend["base"] == w["value"] & PA_MASK & ~0xFFFF
        assert pend["programmed_at"] == w["t"] and pend["programmed_by"] == "guest"
    for c in (c for c in f.commands if c["its_cmd"] == "MAPD" and c["V"]):
        assert only(ts, "itt", devid=c["DeviceID"])["base"] == c["ITT_addr"]
    cbaser = [w["value"] for w in f.writes("GITS_CBASER") if w["value"] >> 63]
    assert only(ts, "cmdq")["base"] == cbaser[-1] & PA_MASK
    assert not any(t["frozen"] for t in ts)


def test_bare_metal_hw_reads_property_writes_pending_walks_its(bare: Path) -> None:
    f, ts = facts(bare), tables(bare)
    assert {c["its_cmd"] for c in f.commands} <= {"MAPD", "MAPC", "MAPTI", "INV", "INVALL", "SYNC"}
    assert not [x for x in f.lpis if x["action"] == "dropped"]
    n_set = Counter(x["processor"] for x in f.lpis if x["action"] == "set")
    n_coal = Counter(x["processor"] for x in f.lpis if x["action"] == "coalesced")
    n_ack = Counter(a["cpu"] for a in f.acks)
    # QEMU set_pending_table_bit: read the byte, write it only when the bit changes (set
    # when an LPI becomes pending, clear when it is acknowledged; coalesced: already set)
    for cpu in {w["rdist"] for w in f.writes("GICR_PENDBASER")}:
        p = only(ts, "pending", cpu=cpu)
        hw = p["agents"]["hw"]
        assert hw["writes"] == n_set[cpu] + n_ack[cpu]
        assert fn(p, "hw").get("set_pending_table_bit", 0) == 2 * hw["writes"] + n_coal[cpu]
        enables = [w for w in f.writes("GICR_CTLR") if w["rdist"] == cpu and w["value"] & 1]
        assert fn(p, "hw")["update_for_all_lpis"] >= len(enables)  # a rescan per enable
        assert untouched(p, "xen")
        assert fn(p, "guest") == {"its_allocate_pending_table": 1}
    prop = only(ts, "property")
    assert prop["agents"]["hw"]["writes"] == 0
    assert set(fn(prop, "hw")) == {"update_for_one_lpi"}
    assert fn(prop, "hw")["update_for_one_lpi"] >= sum(n_set.values())
    # every property byte the hardware read belongs to an LPI a MAPTI mapped
    mapped = {c["pINTID"] for c in f.commands if c["its_cmd"] == "MAPTI"}
    reads = [m for m in f.mem if m.why == "update_for_one_lpi"]
    assert {m.body["addr"] - prop["base"] + 8192 for m in reads} <= mapped
    assert fn(prop, "guest") == {"gic_reset_prop_table": 1, "lpi_write_config": f.n_cmd("INV")}
    # the ITS tables: one ITE (8 + 4 bytes: two loads) per translation and per INV, and
    # two stores per MAPTI; a two-level device table costs a level-1 and a level-2 load
    dev = only(ts, "device")
    indirect = any(w["value"] >> 62 & 1 for w in f.writes("GITS_BASER0") if w["value"] >> 63)
    assert bool(dev["level2"]) == indirect
    levels = 2 if indirect else 1
    for c in (c for c in f.commands if c["its_cmd"] == "MAPD" and c["V"]):
        d = c["DeviceID"]
        itt = only(ts, "itt", devid=d)
        lookups = sum(1 for x in f.lpis if x["devid"] == d) + f.n_cmd("INV", DeviceID=d)
        stores = 2 * f.n_cmd("MAPTI", DeviceID=d)
        assert fn(itt, "hw") == {"get_ite": 2 * lookups, "update_ite": stores}
        assert itt["agents"]["hw"]["writes"] == 2 * f.n_cmd("MAPTI", DeviceID=d)
        assert fn(itt, "guest") == {"its_create_device": 1}
    lookups = len(f.lpis) + f.n_cmd("INV")
    assert fn(dev, "hw") == {
        "get_dte": levels * (lookups + f.n_cmd("MAPTI")),
        "update_dte": f.n_cmd("MAPD") * levels,  # (the level-1 load) and the store
    }
    assert dev["agents"]["hw"]["writes"] == f.n_cmd("MAPD")
    col = only(ts, "collection")
    assert fn(col, "hw") == {"get_cte": lookups, "update_cte": f.n_cmd("MAPC")}
    cmdq = only(ts, "cmdq")
    assert fn(cmdq, "hw") == {"process_cmdq": len(f.commands)}
    guest_cmds = sum(n for w, n in fn(cmdq, "guest").items() if w != "its_probe_one")
    assert guest_cmds == len(f.commands) and fn(cmdq, "guest")["its_probe_one"] == 1
    assert all(untouched(t, "xen") for t in ts)


def test_bare_metal_guest_writes_are_recorded_once_per_store(bare: Path) -> None:
    f = facts(bare)
    guest = [m for m in f.mem if m.body["agent"] == "guest"]
    assert guest and all(m.body["write"] for m in guest)
    # gic_reset_prop_table's memset of the whole 64 KiB table is one record
    (reset,) = [m for m in guest if m.why == "gic_reset_prop_table"]
    prop = only(tables(bare), "property")
    assert reset.body["addr"] == prop["base"] and reset.body["size"] == 0x10000
    assert only(tables(bare), "property")["agents"]["guest"]["bytes"] >= prop["size"]


# -- Xen ------------------------------------------------------------------------------------


def xen_property_reads(f: Facts) -> int:
    """update_lpi_property reads, from Xen's rules (xen-arm-vgic.md §4.3): MAPTI/MAPI (of an
    unmapped event with a mapped collection), INV (of a mapped event), INVALL (every mapped
    vLPI whose vCPU is the collection's), each only once a redistributor enabled LPIs."""
    enabled = False
    col: dict[int, int] = {}
    vlpi_vcpu: dict[tuple[int, int], int] = {}
    n = 0
    for _, what, e in sorted(f.events, key=lambda x: x[0]):
        if what == "reg":
            if e["reg"] == "GICR_CTLR" and e["value"] & ENABLE_LPIS:
                enabled = True
            continue
        name = e["its_cmd"]
        ev = (e.get("DeviceID"), e.get("EventID"))
        if name == "MAPC":
            if e["V"]:
                col[e["ICID"]] = e["RDbase"]
            else:
                col.pop(e["ICID"], None)
        elif name in ("MAPTI", "MAPI"):
            if ev not in vlpi_vcpu and e["ICID"] in col:
                vlpi_vcpu[ev] = col[e["ICID"]]
                n += enabled
        elif name == "INV":
            n += enabled and ev in vlpi_vcpu
        elif name == "INVALL":
            if enabled and e["ICID"] in col:
                n += sum(1 for v in vlpi_vcpu.values() if v == col[e["ICID"]])
        elif name == "MOVI" and ev in vlpi_vcpu and e["ICID"] in col:
            vlpi_vcpu[ev] = col[e["ICID"]]
        elif name == "DISCARD":
            vlpi_vcpu.pop(ev, None)
        elif name == "MAPD" and not e["V"]:
            for k in [k for k in vlpi_vcpu if k[0] == e["DeviceID"]]:
                del vlpi_vcpu[k]
    return n


@pytest.mark.parametrize("which", ["xen", "xen_kexec"])
def test_xen_hw_touches_nothing_xen_reads_property_only_in_update_lpi_property(
    which: str, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(which)
    f, ts = facts(path), tables(path)
    assert ts and all(untouched(t, "hw") for t in ts)
    assert not [m for m in f.mem if m.body["agent"] == "hw"]
    props = [t for t in ts if t["table"] == "property"]
    expected = xen_property_reads(f)
    assert expected > 0
    assert sum(t["agents"]["xen"]["reads"] for t in props) == expected
    for t in props:
        assert t["agents"]["xen"]["writes"] == 0
        assert set(fn(t, "xen")) <= {"update_lpi_property"}
        first = t["agents"]["xen"]["first"]
        assert first is None or (f.first_enable is not None and first > f.first_enable)
    for t in ts:
        if t["table"] == "pending":  # nobody but the guest
            assert untouched(t, "xen") and untouched(t, "hw")
            assert fn(t, "guest") == {"its_allocate_pending_table": 1}
    # the vITS keeps its tables in guest memory (xen-arm-vgic.md §4.4)
    mapd = [c for c in f.commands if c["its_cmd"] == "MAPD" and c["V"]]
    assert sum(fn(t, "xen").get("its_set_itt_address", 0) for t in ts) == len(mapd)
    assert sum(fn(t, "xen").get("its_set_collection", 0) for t in ts) == f.n_cmd("MAPC")
    assert sum(fn(t, "xen").get("write_itte", 0) for t in ts) == f.n_cmd("MAPTI")
    assert sum(fn(t, "xen").get("vgic_its_handle_cmds", 0) for t in ts) == len(f.commands)
    # the property table is programmed once, by CPU0, and every vCPU wrote the same value
    (first_prop,) = [t for t in props if t["programmed_at"] < (f.kexec_t or 1 << 62)]
    assert first_prop["cpus"] == sorted({w["rdist"] for w in f.writes("GICR_PROPBASER")})
    assert not first_prop["frozen"] and first_prop["programmed_by"] == "dom0"


def test_xen_kexec_keeps_first_kernel_tables(xen_kexec: Path) -> None:
    f, ts = facts(xen_kexec), tables(xen_kexec)
    assert f.kexec_t is not None
    before = [t for t in ts if t["programmed_at"] < f.kexec_t]
    after = [t for t in ts if t["programmed_at"] > f.kexec_t]
    assert {t["table"] for t in before} == {
        "property", "pending", "device", "collection", "itt", "cmdq",
    }  # fmt: skip
    assert after  # the second kernel programmed its own ITS tables: new entries
    # the second kernel's INVALL makes Xen read the first kernel's property table
    invall_after = [c for c in f.commands if c["its_cmd"] == "INVALL" and c["t"] > f.kexec_t]
    assert invall_after
    prop = only(before, "property")
    reads_after = [
        m
        for m in f.mem
        if m.why == "update_lpi_property" and m.t > f.kexec_t and m.body["agent"] == "xen"
    ]
    assert reads_after and prop["agents"]["xen"]["last"] == reads_after[-1].t
    assert not [t for t in after if t["table"] == "property"]  # never reprogrammed


def test_no_its_no_tables(no_its: Path) -> None:
    f = facts(no_its)
    assert not f.writes("GICR_PROPBASER") and not f.commands
    assert not [m for m in f.mem if m.body["agent"] == "guest"]
    assert tables(no_its) == []


# -- the guest's log ------------------------------------------------------------------------

PRINTK = [
    ("property", re.compile(r"using LPI property table @0x([0-9a-f]+)")),
    ("pending", re.compile(r"CPU(\d+): using (?:allocated|reserved) LPI pending table @0x([0-9a-f]+)")),
    ("device", re.compile(r"allocated \d+ Devices @([0-9a-f]+)")),
    ("collection", re.compile(r"allocated \d+ Interrupt Collections @([0-9a-f]+)")),
]  # fmt: skip


@pytest.mark.parametrize("which", ["bare", "xen", "xen_kexec"])
def test_every_printed_table_address_was_programmed(
    which: str, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(which)
    f, ts = facts(path), tables(path)
    seen = Counter()
    for line in f.lines:
        for table, rx in PRINTK:
            m = rx.search(line)
            if not m:
                continue
            seen[table] += 1
            addr = int(m.group(m.lastindex or 1), 16)
            if table == "pending":
                bases = {t["base"] for t in ts if t["table"] == table and t["cpu"] == int(m[1])}
            else:
                bases = {t["base"] for t in ts if t["table"] == table}
            assert addr in bases, (line, [hex(b) for b in bases])
    assert set(seen) == {"property", "pending", "device", "collection"}


# -- cut short, the command line ------------------------------------------------------------


def test_truncated_trace_gives_the_prefix(bare: Path, tmp_path: Path) -> None:
    data = bare.read_bytes()
    cut = tmp_path / "cut.trace"
    cut.write_bytes(data[: len(data) * 2 // 3 + 5])
    v = lpi_tables(str(cut))
    assert v.partial and v.problem and "torn" in v.problem
    # the prefix, fed record by record from the whole trace, gives the same tables
    reader = TraceReader(bare)
    dec = Decoder(reader.header)
    ledger = TableLedger(reader.header)
    prefix: list[TraceRecord] = []
    for i, rec in enumerate(reader):
        if i == v.records:
            break
        prefix.append(rec)
        ledger.feed(rec, dec.fields(rec))
    ledger.flush()
    assert [e.as_dict() for e in ledger.entries] == v.as_dict()["tables"]
    # and the hw pending-table writes are those of the prefix
    spb = sum(1 for r in prefix if r.why == "set_pending_table_bit" and r.body.get("write"))
    got = sum(fn(t, "hw").get("set_pending_table_bit", 0) for t in v.as_dict()["tables"])
    assert spb > 0 and got == spb + sum(
        1 for r in prefix if r.why == "set_pending_table_bit" and not r.body.get("write")
    )


def test_cli_json_shape(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lpi-tables", str(bare), "--json"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    d = json.loads(out.out)
    assert set(d) == {"partial", "problem", "tables"}
    assert d["partial"] is False and d["problem"] is None
    assert {t["table"] for t in d["tables"]} == {
        "property", "pending", "device", "collection", "itt", "cmdq",
    }  # fmt: skip
    for t in d["tables"]:
        assert {
            "table", "cpu", "cpus", "devid", "base", "size", "level2", "programmed_at",
            "programmed_by", "frozen", "agents",
        } == set(t)  # fmt: skip
        assert set(t["agents"]) == set(AGENTS)
        for a in t["agents"].values():
            assert set(a) == {"reads", "writes", "bytes", "first", "last", "functions"}
        assert (t["cpu"] is not None) == (t["table"] == "pending")
        assert (t["devid"] is not None) == (t["table"] == "itt")


def test_cli_rich_table(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lpi-tables", str(bare)]) == 0
    out = capsys.readouterr().out
    for col in ("hw R/W", "xen R/W", "guest W", "functions"):
        assert col in out
    prop = only(tables(bare), "property")
    row = next(line for line in out.splitlines() if f"{prop['base']:#x}" in line)
    hw = prop["agents"]["hw"]
    assert row.startswith("│ property") and f"{hw['reads']}/{hw['writes']}" in row


def test_cli_cut_short_and_not_a_trace(
    bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.trace"
    cut.write_bytes(bare.read_bytes()[:-3])
    assert run(["lpi-tables", str(cut), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["partial"] is True
    assert len(out.err.splitlines()) == 1 and "torn" in out.err
    bad = tmp_path / "bad.trace"
    bad.write_bytes(b"not a trace at all")
    assert run(["lpi-tables", str(bad)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.splitlines()) == 1 and "not a trace" in out.err


# -- Xen's frozen redistributor registers (synthetic: no scenario rewrites them) -------------

PROP_A = 0x40A0_0000 | 0x78F  # IDbits 15: 16 bits of INTIDs
PROP_B = 0x40B0_0000 | 0x78F
PEND_A = 0x40C0_0000
PEND_B = 0x40D0_0000


def test_xen_freezes_propbaser_and_pendbaser(tmp_path: Path) -> None:
    """xen-arm-vgic.md §3: PROPBASER per domain, ignored once any redistributor has LPIs
    enabled; PENDBASER per vCPU, ignored once that vCPU enabled LPIs; EnableLPIs write-once."""
    s = Synth(tmp_path / "x.trace")
    t = 1000

    def dabt(vcpu: int, off: int, value: int, size: int = 8) -> None:
        nonlocal t
        addr = GICR_BASE + vcpu * GICR_STRIDE + off
        msg = Exit(vcpu=vcpu, reason="dabt", addr=addr, size=size, write=True, value=value)
        s.env(t, "dom0", "xen", msg)
        t += 100

    dabt(0, 0x70, PROP_A)
    dabt(0, 0x78, PEND_A)
    dabt(0, 0x00, ENABLE_LPIS, 4)
    dabt(1, 0x70, PROP_B)  # frozen: vCPU0 enabled LPIs (rdists_enabled)
    dabt(1, 0x78, PEND_B)  # accepted: vCPU1 has not
    dabt(1, 0x00, ENABLE_LPIS, 4)
    dabt(1, 0x00, 0, 4)  # EnableLPIs cannot be cleared
    dabt(1, 0x78, PEND_A + 0x10000)  # frozen
    rid = 7
    s.env(t, "xen", "dom0", Mem(agent="xen", addr=(PROP_B & PA_MASK) + 3, size=1, write=False),
          id=rid, why="update_lpi_property")  # fmt: skip
    s.env(t, "xen", "dom0", Mem(agent="xen", addr=(PROP_A & PA_MASK) + 3, size=1, write=False),
          id=rid + 1, why="update_lpi_property")  # fmt: skip
    s.env(t + 5, "dom0", "xen", Reply(data=b"\xa3"), reply_to=rid + 1)
    s.close()
    ts = tables(tmp_path / "x.trace")
    a = only(ts, "property", base=PROP_A & PA_MASK)
    b = only(ts, "property", base=PROP_B & PA_MASK)
    assert (a["frozen"], b["frozen"]) == (False, True)
    assert a["cpus"] == [0] and b["cpus"] == [1]
    assert a["agents"]["xen"]["reads"] == 1 and b["agents"]["xen"]["reads"] == 1
    assert only(ts, "pending", base=PEND_B)["frozen"] is False
    assert only(ts, "pending", base=PEND_A + 0x10000)["frozen"] is True
    assert only(ts, "pending", base=PEND_A)["cpus"] == [0]
