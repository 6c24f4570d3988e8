"""A small seeded run of the kernel fuzz (bench/fuzz_kernel.py): taps of the three scheme
profiles with the card's answers mutated in transit end with no exception, no "internal
error", no offline approval resting on a changed signed item or its unsigned shadow, and no
clear PAN in any record - and the run did reach what it is meant to test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_kernel.py"


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_kernel", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_kernel"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_kernel_fuzz_run_ends_with_the_four_counters_at_zero() -> None:
    summary = _fuzz_module().run_fuzz(3000, seed=7)
    assert summary.counters == {"exceptions": 0, "internal_errors": 0,
                                "signed_offline_approvals": 0, "clear_pans": 0}
    assert summary.taps == 3000
    # the run reached what it tests: mutated taps, changed signed data, offline approvals
    assert summary.mutated_taps > 1500
    assert summary.signed_touched_taps > 500
    assert summary.offline_approvals > 300
    assert set(summary.outcomes_by_scheme) == {"quickpass", "visa", "mastercard"}
    assert {"APPROVED", "DECLINED", "END APPLICATION"} <= set(summary.outcomes)


def test_the_same_seed_gives_the_same_taps() -> None:
    fuzz = _fuzz_module()
    first, second = fuzz.run_fuzz(60, seed=11, first=100), fuzz.run_fuzz(60, seed=11, first=100)
    assert first.outcomes == second.outcomes
    assert first.signed_touched_taps == second.signed_touched_taps


def test_the_fuzz_counts_what_an_unbound_kernel_lets_through() -> None:
    """The checker is not blind: a tap whose GPO answer carries another PAN in track 2 is a
    change of the PAN's unsigned shadow, and the bench records the PAN it injected."""
    fuzz = _fuzz_module()
    scheme = fuzz.schemes(1)[1]  # visa: 57 in the GPO answer
    log = fuzz.TapLog()
    card = fuzz.HceCard(scheme.profile, fuzz.StateStore())
    link = fuzz.HostileLink(card, scheme, fuzz.random.Random(5), [("GPO", 0, "track 2 PAN")],
                            log)
    link.reset()
    link.process(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
    link.process(bytes.fromhex("00A4040007A000000003101000"))
    pdol_data = bytes.fromhex("27000000" "000000001234" "000000000000" "0156" "0000000000"
                              "0156" "260316" "00" "11223344")
    link.process(bytes([0x80, 0xA8, 0, 0, len(pdol_data) + 2, 0x83, len(pdol_data)])
                 + pdol_data + b"\x00")
    assert log.events == ["GPO #0: track 2 PAN"]
    assert "static" in log.touched
    assert log.injected_pans and log.injected_pans[0] != scheme.pan
