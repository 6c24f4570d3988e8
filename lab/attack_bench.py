"""The attack bench: run attacks (or test assertions) of the lying card against a terminal and
judge what the terminal did against the verdict a correct terminal reaches.

Terminals the bench drives:

=================  ==========================================================================
``loopback``       our terminal in-process, the card called directly (the same code path as a
                   tap: ``perform_transaction`` over a transport)
``vpcd``           our terminal on pcscd's virtual reader; the card served on vpcd from a
                   thread (holds a vpcd slot with the machine-wide flock)
``nfc-udp``        our terminal on nfcpy's udp driver; the card on the udp card link
``prompt``         any terminal: the card is served on ``--card-link`` (a second reader, e.g.
                   ``nfc:usb:04e6:5591``, or vpcd for a PC/SC terminal application); a person
                   taps and types what the terminal showed
=================  ==========================================================================

Every run starts with one ``baseline`` row per card product in use: the card without lies must
be approved offline, or the attacks' verdicts would mean nothing. The report is a console
table, a JSON document (``format`` :data:`BENCH_FORMAT`) and JUnit XML.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from xml.etree import ElementTree as ET

from emvtap.bits import TSI, TVR, names
from emvtap.masking import mask_pan, mask_text
from emvtap.profile import CardProfile
from hce_card.attacks import Attack, AttackCard, CardLeftField, Scenario, Verdict
from hce_card.card import HceCard
from hce_card.state import StateStore

__all__ = [
    "BENCH_FORMAT",
    "TERMINAL_KINDS",
    "BenchRow",
    "Observation",
    "baseline",
    "judge",
    "open_terminal",
    "run_bench",
    "scenario_config",
    "scenario_profile",
    "to_json",
    "to_junit",
]

BENCH_FORMAT = "emvtap-attack-bench/1"
#: How long an attacking card on an ISO-DEP link may keep a command going with S(WTX).
ATTACK_MAX_COMMAND_SECONDS = 3600.0
TERMINAL_KINDS = ("loopback", "vpcd", "nfc-udp", "prompt")
#: Outcomes a person can report in prompt mode (first letters accepted).
PROMPT_OUTCOMES = ("APPROVED", "DECLINED", "ONLINE REQUEST", "END APPLICATION", "TRY AGAIN",
                   "TRY ANOTHER INTERFACE", "SELECT NEXT")


@dataclass
class Observation:
    """What the terminal did: its (kernel) outcome, TVR/TSI when known, why, and the APDUs."""

    outcome: str
    reason: str = ""
    cvm: str = ""
    aid: str = ""
    tvr: str = ""
    tsi: str = ""
    final_outcome: str = ""
    apdus: list[dict[str, Any]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "final_outcome": self.final_outcome,
            "reason": self.reason, "aid": self.aid, "cvm": self.cvm, "tvr": self.tvr,
            "tvr_bits": names(bytes.fromhex(self.tvr), TVR) if self.tvr else [],
            "tsi": self.tsi, "mutations_applied": self.applied, "apdus": self.apdus,
        }


@dataclass
class BenchRow:
    attack: Attack
    observed: Observation | None
    passed: bool
    why: str
    seconds: float = 0.0
    kind: str = "attack"  # attack | baseline | assertion
    ran: bool = True  # False: the attack needs a link this terminal is not reached by

    @property
    def status(self) -> str:
        return "not run" if not self.ran else "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        a = self.attack
        return {
            "id": a.id, "kind": self.kind, "title": a.title, "family": a.family,
            "kernel_rule": a.kernel_rule, "source": a.source,
            "scenario": a.scenario.to_dict(), "mutations": [m.to_dict() for m in a.mutations],
            "expected": a.expected.to_dict(),
            "observed": self.observed.to_dict() if self.observed else None,
            "result": self.status, "why": self.why,
            "seconds": round(self.seconds, 3),
        }


def judge(expected: Verdict, observed: Observation) -> tuple[bool, str]:
    """Pass when the outcome is one the verdict allows and every TVR/TSI bit it names is set
    (bits are judged only when the terminal's TVR/TSI are known)."""
    problems = []
    if observed.reason.startswith("internal error"):
        problems.append("ended in an internal error, not a defined outcome")
    if observed.outcome not in expected.outcomes:
        problems.append(f"outcome {observed.outcome}, expected {' or '.join(expected.outcomes)}")
    if expected.aid and observed.aid and observed.aid != expected.aid:
        problems.append(f"selected {observed.aid}, expected {expected.aid}")
    if expected.cvm and observed.cvm and observed.cvm != expected.cvm:
        problems.append(f"CVM {observed.cvm}, expected {expected.cvm}")
    for table, wanted, have in ((TVR, expected.tvr, observed.tvr),
                                (TSI, expected.tsi, observed.tsi)):
        if not wanted or not have:
            continue
        value = bytes.fromhex(have)
        from emvtap.bits import is_set

        missing = [b for b in wanted if not is_set(value, getattr(table, b))]
        if missing:
            problems.append(f"{table.__name__} {have} lacks {', '.join(missing)}")
    return (not problems, "; ".join(problems) or "as expected")


# --- card images and terminal settings --------------------------------------------------------


@lru_cache(maxsize=8)
def scenario_profile(card: str, seed: int = 1) -> CardProfile:
    """The scenario's card product, generated from *seed* (same seed, same bytes)."""
    from emvtap.perso import generate_profile
    from emvtap.perso_schemes import (
        generate_mastercard_profile,
        generate_multi_application_profile,
        generate_visa_profile,
    )

    makers: dict[str, Callable[[int], CardProfile]] = {
        "quickpass": generate_profile, "visa": generate_visa_profile,
        "mastercard": generate_mastercard_profile,
        "multi": generate_multi_application_profile,
    }
    return makers[card](seed)


def scenario_config(scenario: Scenario) -> Any:
    """The terminal configuration: shipped defaults, then the scenario's keys. The extra key
    ``combinations_patch`` ({AID: {field: value}}) changes single combinations."""
    from terminal.config import TerminalConfig

    data = TerminalConfig.defaults_dict()
    overrides = dict(scenario.terminal)
    patch = overrides.pop("combinations_patch", {})
    data |= overrides
    if patch:
        combos = []
        for c in data["combinations"]:
            combos.append(c | patch.get(c["aid"], {}))
        extra = [dict(v, aid=k) for k, v in patch.items()
                 if not any(c["aid"] == k for c in data["combinations"]) and "kernel_id" in v]
        data["combinations"] = combos + extra
    return TerminalConfig.from_dict(data)


def _tap_time(scenario: Scenario) -> datetime | None:
    if not scenario.date:
        return None
    return datetime.fromisoformat(scenario.date + "T12:00:00")


def _observation(result: Any, card: AttackCard) -> Observation:
    rec = result.to_json()
    return Observation(
        outcome=str(result.outcome), reason=mask_text(result.reason), cvm=rec["cvm"],
        aid=rec["aid"],
        tvr=rec["tvr"],
        tsi=rec["tsi"], final_outcome=rec["final_outcome"] or "",
        apdus=rec["apdus"], applied=list(card.applied),
    )


# --- terminals --------------------------------------------------------------------------------


class BenchTerminal(Protocol):
    kind: str

    def tap(self, card: AttackCard, scenario: Scenario) -> Observation: ...

    def close(self) -> None: ...


def _perform(transport: Any, scenario: Scenario, card_timeout: float) -> Any:
    from terminal.pay import perform_transaction

    return perform_transaction(
        transport, scenario_config(scenario), scenario.amount, switch="none",
        card_timeout=card_timeout, now=_tap_time(scenario), rng=random.Random(0),
        unpredictable_number=bytes.fromhex("1A2B3C4D"))


class LoopbackTerminal:
    """Our terminal in-process; ``remove_card`` becomes a card removal."""

    kind = "loopback"

    def tap(self, card: AttackCard, scenario: Scenario) -> Observation:
        from terminal.transport.base import CardRemovedError
        from terminal.transport.loopback import LoopbackTransport

        class FieldTransport(LoopbackTransport):
            def _send(self, apdu: bytes) -> bytes:
                try:
                    return super()._send(apdu)
                except CardLeftField as exc:
                    self.connected = False
                    raise CardRemovedError(str(exc)) from exc

        result = _perform(FieldTransport(card), scenario, 5.0)
        return _observation(result, card)

    def close(self) -> None:
        pass


class VpcdTerminal:
    """Our terminal on pcscd; each tap serves the card on a vpcd slot from a thread."""

    kind = "vpcd"

    def __init__(self, apdu_timeout: float = 10.0, slot_wait: float = 600.0) -> None:
        from lab.hil.rigs import VPCD_SLOTS, vpcd_lock_path

        self.apdu_timeout = apdu_timeout
        self._fd: int | None = None
        deadline = time.monotonic() + slot_wait
        while self._fd is None:
            for slot in VPCD_SLOTS:
                fd = _lock(vpcd_lock_path(slot.port))
                if fd is not None:
                    self.slot, self._fd = slot, fd
                    break
            else:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"every vpcd slot stayed in use for {slot_wait:.0f} s "
                                       "(flock on /tmp/emvtap-vpcd-*.lock)")
                time.sleep(0.1)  # flock has no timed wait over several files

    def tap(self, card: AttackCard, scenario: Scenario) -> Observation:
        from hce_card.link.vpcd import VpcdLink
        from lab.hil.pcsc_watch import wait_for_reader
        from terminal.transport.pcsc import PcscTransport

        link = VpcdLink(card, "127.0.0.1", self.slot.port)
        card.leave_field_hook = link.remove_card
        link.start()
        transport = PcscTransport(self.slot.reader, apdu_timeout=self.apdu_timeout)
        try:
            wait_for_reader(self.slot.reader, present=True, timeout=10.0)
            result = _perform(transport, scenario, 10.0)
            return _observation(result, card)
        finally:
            transport.close()
            link.stop()
            with contextlib.suppress(Exception):
                link.close(timeout=30.0)
            with contextlib.suppress(Exception):
                wait_for_reader(self.slot.reader, present=False, timeout=10.0)

    def close(self) -> None:
        if self._fd is not None:
            import os

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class NfcUdpTerminal:
    """Our terminal on nfcpy's udp driver; the card on the udp card link of the same port."""

    kind = "nfc-udp"

    def __init__(self, port: int | None = None) -> None:
        from lab.hil.rigs import free_udp_port

        self.port = port or free_udp_port()

    def tap(self, card: AttackCard, scenario: Scenario) -> Observation:
        from hce_card.link.nfc_target import NfcTargetLink
        from terminal.transport.nfc import NfcTransport

        # the lying card keeps asking for time as long as the attack says (the link's own
        # 30 s guard would otherwise end a WTX storm for the terminal)
        link = NfcTargetLink(card, f"udp:127.0.0.1:{self.port}",
                             max_command_seconds=ATTACK_MAX_COMMAND_SECONDS)
        card.leave_field_hook = link.remove_card
        link.start()
        transport = NfcTransport(f"udp:127.0.0.1:{self.port}")
        try:
            link.listening.wait(5.0)
            result = _perform(transport, scenario, 10.0)
            return _observation(result, card)
        finally:
            transport.close()
            link.stop()
            with contextlib.suppress(Exception):
                link.close(timeout=45.0)
            self.port = _next_port(self.port)

    def close(self) -> None:
        pass


class PromptTerminal:
    """Any terminal: the card is served on *card_link*; a person taps it on the terminal and
    says what the terminal showed. The APDU exchange is the card's view of it."""

    kind = "prompt"

    def __init__(self, card_link: str, ask: Callable[[str], str] = input,
                 tell: Callable[[str], None] = print) -> None:
        self.card_link = card_link
        self.ask, self.tell = ask, tell

    def tap(self, card: AttackCard, scenario: Scenario) -> Observation:
        from hce_card.link import open_link

        log: list[dict[str, Any]] = []
        recording = _RecordingCard(card, log)
        options = ({"max_command_seconds": ATTACK_MAX_COMMAND_SECONDS}
                   if self.card_link.startswith("nfc:") else {})
        link = open_link(self.card_link, recording, **options)
        card.leave_field_hook = getattr(link, "remove_card", None)
        thread = threading.Thread(target=link.serve, daemon=True)
        thread.start()
        powered = getattr(link, "powered", None)  # vpcd: pcscd has seen this card
        if powered is not None and not powered.wait(15.0):
            link.stop()
            raise RuntimeError(f"no reader took the card on {self.card_link} within 15 s")
        try:
            self.tell(f"start a purchase of {scenario.amount / 100:.2f} on the terminal"
                      + (f" dated {scenario.date}" if scenario.date else "")
                      + f" and tap the card on {self.card_link}")
            outcome = _ask_outcome(self.ask)
        finally:
            link.stop()
            thread.join(10.0)
        return Observation(outcome=outcome, reason="reported by the person at the terminal",
                           apdus=log, applied=list(card.applied))

    def close(self) -> None:
        pass


class _RecordingCard:
    """The attack card, with each exchange noted (PAN digits masked)."""

    def __init__(self, card: AttackCard, log: list[dict[str, Any]]) -> None:
        self.card, self.log, self.atr = card, log, card.atr
        self._pans = [card.profile.pan]  # type: ignore[attr-defined]

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        from emvtap.masking import redact_hex

        response = self.card.process(apdu)
        self.log.append({"c": redact_hex(apdu, self._pans),
                         "r": redact_hex(response, self._pans)})
        return response


def _ask_outcome(ask: Callable[[str], str]) -> str:
    choices = ", ".join(PROMPT_OUTCOMES)
    while True:
        answer = ask(f"what did the terminal show? ({choices}) ").strip().upper()
        hits = [o for o in PROMPT_OUTCOMES if o == answer]
        hits = hits or [o for o in PROMPT_OUTCOMES if answer and o.startswith(answer)]
        if len(hits) == 1:
            return hits[0]


def _lock(path: Path) -> int | None:
    import errno
    import os

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def _next_port(port: int) -> int:
    from lab.hil.rigs import free_udp_port

    return free_udp_port() if port else port


def open_terminal(kind: str, *, card_link: str = "", apdu_timeout: float = 10.0,
                  ask: Callable[[str], str] = input,
                  tell: Callable[[str], None] = print) -> BenchTerminal:
    if kind == "loopback":
        return LoopbackTerminal()
    if kind == "vpcd":
        return VpcdTerminal(apdu_timeout)
    if kind == "nfc-udp":
        return NfcUdpTerminal()
    if kind == "prompt":
        if not card_link:
            raise ValueError("prompt mode needs --card-link (where the card is served)")
        return PromptTerminal(card_link, ask, tell)
    raise ValueError(f"unknown terminal kind {kind!r}; expected one of {TERMINAL_KINDS}")


# --- running ------------------------------------------------------------------------------


def _link_kind(terminal: BenchTerminal) -> str:
    return {"loopback": "loopback", "vpcd": "vpcd", "nfc-udp": "nfc"}.get(
        terminal.kind, "prompt")


def baseline(card: str) -> Attack:
    """The honest card of a product: approved offline."""

    return Attack(id=f"baseline-{card}", title=f"{card} card without lies", family="cvm",
                  description="control: the scenario card unchanged", source="",
                  expected=Verdict(("APPROVED",), (), "approved offline"),
                  mutations=(), scenario=Scenario(card=card))


def run_one(terminal: BenchTerminal, attack: Attack, seed: int = 1,
            kind: str = "attack") -> BenchRow:
    """Run *attack* (all its taps) on a fresh card; judge the last tap."""
    start = time.perf_counter()
    links = attack.scenario.links
    if links and _link_kind(terminal) not in links and terminal.kind != "prompt":
        return BenchRow(attack, None, False,
                        f"needs a {' or '.join(links)} link; not run on {terminal.kind}",
                        0.0, kind, ran=False)
    profile = scenario_profile(attack.scenario.card, seed)
    card = AttackCard(HceCard(profile, StateStore()), [attack])
    observed = None
    try:
        for _ in range(attack.scenario.taps):
            observed = terminal.tap(card, attack.scenario)
    except Exception as exc:  # a bench failure is a row, not a crash of the run
        return BenchRow(attack, observed, False,
                        f"bench error: {type(exc).__name__}: {mask_text(str(exc))}",
                        time.perf_counter() - start, kind)
    assert observed is not None
    observed.apdus = _masked(observed.apdus, _pans(profile, attack))
    passed, why = judge(attack.expected, observed)
    return BenchRow(attack, observed, passed, why, time.perf_counter() - start, kind)


def _pans(profile: CardProfile, attack: Attack) -> list[str]:
    """Every PAN the tap can show: the profile's, each application's (5A, track 2) and the
    ones the attack puts in."""
    from emvtap.tlv import TlvError, decode, flatten

    pans = {profile.pan}
    for app in profile.applications:
        pans.add(app.track2.hex().upper().split("D")[0])
        for rec in app.records:
            try:
                pan = flatten(decode(rec.data)).get(0x5A)
            except TlvError:
                continue
            if pan:
                pans.add(pan.hex().upper().rstrip("F"))
    pans |= {str(m.args["pan"]) for m in attack.mutations if "pan" in m.args}
    return sorted(p for p in pans if len(p) >= 12)


def _masked(value: Any, pans: list[str]) -> Any:
    """*value* (the APDU records: hex, decoded text) with every occurrence of the PANs' digits
    masked - whether or not the answer could be parsed."""
    if isinstance(value, str):
        for pan in pans:
            masked = mask_pan(pan)
            value = value.replace(pan, masked + pan[len(masked):])
        return value
    if isinstance(value, list):
        return [_masked(v, pans) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, pans) for k, v in value.items()}
    return value


def run_bench(terminal: BenchTerminal, attacks: Sequence[Attack], *, seed: int = 1,
              with_baseline: bool = True, kind: str = "attack",
              progress: Callable[[BenchRow], None] | None = None) -> list[BenchRow]:
    rows: list[BenchRow] = []
    todo: list[tuple[Attack, str]] = []
    if with_baseline:
        products = dict.fromkeys(a.scenario.card for a in attacks)
        todo += [(baseline(p), "baseline") for p in products]
    todo += [(a, kind) for a in attacks]
    for attack, row_kind in todo:
        row = run_one(terminal, attack, seed, row_kind)
        rows.append(row)
        if progress:
            progress(row)
    return rows


# --- reports ------------------------------------------------------------------------------


def to_json(rows: Sequence[BenchRow], terminal: str) -> dict[str, Any]:
    attacks = [r for r in rows if r.kind != "baseline"]
    return {
        "format": BENCH_FORMAT,
        "terminal": terminal,
        "summary": {"total": len(attacks), "passed": sum(r.status == "pass" for r in attacks),
                    "failed": sum(r.status == "fail" for r in attacks),
                    "not_run": sum(r.status == "not run" for r in attacks),
                    "baseline_ok": all(r.passed for r in rows if r.kind == "baseline")},
        "rows": [r.to_dict() for r in rows],
    }


def to_junit(rows: Sequence[BenchRow], terminal: str, name: str = "emvtap attack bench") -> str:
    suite = ET.Element("testsuite", name=name, tests=str(len(rows)),
                       failures=str(sum(r.status == "fail" for r in rows)),
                       skipped=str(sum(r.status == "not run" for r in rows)),
                       time=f"{sum(r.seconds for r in rows):.3f}")
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"{terminal}.{r.kind}.{r.attack.family}",
                             name=r.attack.id, time=f"{r.seconds:.3f}")
        out = ET.SubElement(case, "system-out")
        out.text = json.dumps(r.to_dict(), indent=1)
        if not r.ran:
            ET.SubElement(case, "skipped", message=r.why)
        elif not r.passed:
            fail = ET.SubElement(case, "failure", message=r.why)
            fail.text = (f"expected: {r.attack.expected.text}\nobserved: "
                         + (f"{r.observed.outcome} ({r.observed.reason})" if r.observed
                            else "-"))
    return ET.tostring(suite, encoding="unicode")


def render_table(rows: Sequence[BenchRow], console: Any) -> None:
    from rich.table import Table

    table = Table(title="attack bench", show_lines=False)
    table.add_column("id", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("expected")
    table.add_column("observed", no_wrap=True)
    table.add_column("TVR", no_wrap=True)
    table.add_column("result")
    marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "not run": "[yellow]not run[/]"}
    for r in rows:
        obs = r.observed
        table.add_row(r.attack.id, r.attack.kernel_rule, r.attack.expected.text,
                      obs.outcome if obs else "-", obs.tvr if obs else "",
                      marks[r.status] + ("" if r.passed else f" {r.why}"))
    console.print(table)


def with_scenario(attack: Attack, **changes: Any) -> Attack:
    return replace(attack, scenario=replace(attack.scenario, **changes))


def write_reports(rows: Sequence[BenchRow], terminal: str, json_path: Path | None,
                  junit_path: Path | None) -> None:
    if json_path:
        json_path.write_text(json.dumps(to_json(rows, terminal), indent=1) + "\n")
    if junit_path:
        junit_path.write_text(to_junit(rows, terminal) + "\n")


@contextlib.contextmanager
def bench_terminal(kind: str, **options: Any) -> Iterator[BenchTerminal]:
    terminal = open_terminal(kind, **options)
    try:
        yield terminal
    finally:
        terminal.close()


def mapping_or_empty(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
