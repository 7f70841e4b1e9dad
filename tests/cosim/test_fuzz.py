"""``cosim fuzz``: a hostile guest finds no model exception; a planted bug is found, shrunk,
and replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosim import fuzz
from cosim.cli import main
from cosim.scenario import loads
from hypervisor.baremetal import BareMetalHost
from tests.cosim.test_faults import BM, XEN

BM_SC = BM.format(duration="140ms")
XEN_SC = XEN.format(duration="140ms", lrs=4, rate=20000)


def _sc(text: str, tmp_path: Path, name: str):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return loads(text, str(p)), p


def _ops(sc, budget: int, seed: int = 1):
    from cosim.run import build

    return fuzz.gen_ops(seed, fuzz.FuzzContext.of(build(sc)), budget)


def test_generator_covers_every_frame_and_kind(tmp_path: Path) -> None:
    sc, _ = _sc(XEN_SC, tmp_path, "xen")
    ops = _ops(sc, 400)
    assert {o["op"] for o in ops} == set(fuzz.KINDS)
    assert {o["frame"] for o in ops if o["op"] == "mmio"} == {"GICD", "GICR", "GITS"}
    assert {o["cpu"] for o in ops} == {0, 1, 2, 3}
    # Nothing that turns the domain's own interrupts off, nothing that ends it
    for o in ops:
        if o["op"] == "mmio" and o["write"]:
            assert not fuzz.SELF_HARM_REGS.match(o["reg"] or "-"), o
        if o["op"] == "smccc":
            assert o["fid"] not in fuzz.PSCI_ENDING
    assert _ops(sc, 50) == _ops(sc, 50) != _ops(sc, 50, seed=2)


@pytest.mark.parametrize("name", ["bm", "xen"])
def test_a_few_hundred_operations_find_no_model_exception(tmp_path: Path, name: str) -> None:
    sc, _ = _sc(BM_SC if name == "bm" else XEN_SC, tmp_path, name)
    ops = _ops(sc, 300, seed=3)
    o = fuzz.run_ops(sc, ops)
    assert o.failure is None, o.failure
    assert o.outcome in ("ok", "xen_crash")
    if o.outcome == "ok":  # every request answered, interrupts kept flowing
        assert o.answered == 300 and o.delivered_during > 0
    r = o.result
    assert r["lpis_raised"] == (r["lpis_delivered"] + r["lpis_delivered_unexpected"]
                                + r["lpis_coalesced"] + r["lpis_dropped"] + r["lpis_pending"])  # fmt: skip


def test_xen_crash_is_an_expected_outcome_naming_the_site(tmp_path: Path) -> None:
    # INVALL of a collection beyond the collection table: Xen's its_handle_invall dereferences the NULL
    # vCPU of get_vcpu_from_collection (xen-arm-vgic.md); the model stops with the site.
    sc, _ = _sc(XEN_SC, tmp_path, "xen")
    invall = {"op": "its", "cmd": (0x0D).to_bytes(8, "little").hex() + "00" * 8
              + (0xFFFF).to_bytes(8, "little").hex() + "00" * 8, "cpu": 1}  # fmt: skip
    o = fuzz.run_ops(sc, [invall])
    assert o.failure is None and o.outcome == "xen_crash" and o.crash_site == "its_handle_invall"
    assert o.result["exit"] == "xen_crash"


def test_a_planted_bug_is_found_shrunk_and_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    sc, path = _sc(BM_SC, tmp_path, "bm")
    real = BareMetalHost._on_sysreg

    def planted(self, env, msg, port):  # a model bug on one register (the kernel writes 0)
        if msg.reg == "ICC_BPR1_EL1" and msg.write and msg.value:
            raise RuntimeError("planted bug")
        return real(self, env, msg, port)

    monkeypatch.setattr(BareMetalHost, "_on_sysreg", planted)
    ops = _ops(sc, 120)
    culprits = [o for o in ops if o["op"] == "sysreg" and o["reg"] == "ICC_BPR1_EL1"
                and o["write"] and o["value"]]  # fmt: skip
    assert culprits
    replay = tmp_path / "replay.json"
    rc = main(["fuzz", str(path), "--budget", "120", "--seed", "1", "--out", str(replay)])
    out = capsys.readouterr().out
    assert rc == 1
    assert (
        "FAILURE (model-error): host bad-request: host failed on sysreg: RuntimeError: planted bug"
        in out
    )
    assert "seed: 1\n" in out
    doc = json.loads(replay.read_text())
    assert len(doc["ops"]) == 1 and doc["ops"][0] in culprits  # shrunk to the one culprit
    assert f"replay: cosim fuzz {path} --replay {replay}\n" in out
    assert main(["fuzz", str(path), "--replay", str(replay)]) == 1  # still fails
    assert "RuntimeError: planted bug" in capsys.readouterr().out
    monkeypatch.setattr(BareMetalHost, "_on_sysreg", real)
    assert main(["fuzz", str(path), "--replay", str(replay)]) == 0  # fixed: clean
    assert "clean: 1 operations, no failure" in capsys.readouterr().out


def test_bad_replay_file_is_one_line(tmp_path: Path, capsys) -> None:
    _, path = _sc(BM_SC, tmp_path, "bm")
    bad = tmp_path / "bad.json"
    bad.write_text('{"ops": [{"op": "teleport"}]}')
    assert main(["fuzz", str(path), "--replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"cosim fuzz: {bad}: ops[0]: 'op' must be one of mmio, sysreg, hypercall, smccc, its\n"
    )
