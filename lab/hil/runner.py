"""Running scenarios on a rig: per scenario a work directory, a switch on a fresh store, the
cards made, then the steps in order - each step kind handled by one function of
:data:`STEP_HANDLERS` - until the last step or the first that does not pass.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.hil.cards import Card, Field, prepare_card
from lab.hil.expect import check
from lab.hil.loader import ScenarioError
from lab.hil.model import (
    Budget,
    CardForm,
    CardRef,
    EventStep,
    InAppStep,
    PresentStep,
    ProvisionSource,
    RemoveStep,
    ReplenishStep,
    Scenario,
    SyncStep,
    TapStep,
)
from lab.hil.procs import run_emvtap
from lab.hil.results import (
    NotRunnable,
    RigError,
    ScenarioResult,
    Status,
    StepResult,
    TapTiming,
    Unsupported,
)
from lab.hil.rigs import Readers, Rig
from lab.hil.switch_link import ADMIN_TOKEN_ENV, SwitchProcess
from lab.hil.tap import run_tap, summary
from terminal.config import ConfigError, TerminalConfig

__all__ = ["STEP_HANDLERS", "RunOptions", "Session", "over_budget", "run_scenario",
           "run_scenarios"]

#: How long a person gets to present a real card.
PERSON_CARD_TIMEOUT = 60.0


@dataclass(frozen=True)
class RunOptions:
    workdir: Path | None = None  # scenario work directories go here (kept); None: temporary
    keep: bool = False  # keep temporary work directories of passing scenarios too
    strict_timing: bool = False  # over-budget taps fail (off: reported and flagged only)
    on_step: Callable[[ScenarioResult, StepResult], None] | None = None


@dataclass
class Session:
    """One scenario's running world."""

    scenario: Scenario
    rig: Rig
    readers: Readers
    workdir: Path
    options: RunOptions
    config: TerminalConfig
    switch: SwitchProcess | None = None
    cards: dict[str, Card] = field(default_factory=dict)
    card_field: Field | None = None  # the terminal reader's field
    transport: Any = None  # the terminal reader (a terminal.transport driver)
    wallets: Any = None  # lab.hil.wallet_rig.WalletRig, started by the first wallet step
    stack: Any = None  # the scenario's ExitStack (what is started late is stopped with it)

    def card(self, name: str) -> Card:
        return self.cards[name]

    def resolve(self, subject: CardRef | str) -> str:
        if isinstance(subject, CardRef):
            return self.card(subject.card).value(subject.attribute)
        return subject


# --- steps ------------------------------------------------------------------------------------

def over_budget(timing: TapTiming, budget: Budget) -> list[str]:
    """The budget lines *timing* exceeds, one message each."""
    flags = []
    if budget.tap_ms is not None and timing.in_field_ms > budget.tap_ms:
        flags.append(f"card in field {timing.in_field_ms:.1f} ms > {budget.tap_ms:g} ms")
    if budget.apdu_ms is not None:
        flags += [f"{a['name']} {a['ms']:.1f} ms > {budget.apdu_ms:g} ms"
                  for a in timing.apdus if a["ms"] > budget.apdu_ms]
    return flags


def _tap(session: Session, step: TapStep, index: int) -> Iterator[StepResult]:
    card_field = session.card_field
    assert card_field is not None
    card = session.card(step.card)
    budget = session.scenario.budget.merged(step.budget)
    timeout = session.scenario.card_timeout
    if card.spec.form is CardForm.REAL:
        timeout = max(timeout, PERSON_CARD_TIMEOUT)
    switch = session.switch.address if session.switch else "none"
    for n in range(1, step.repeat + 1):
        title = step.describe() + (f" ({n}/{step.repeat})" if step.repeat > 1 else "")
        result = StepResult(index, step.kind, title)
        started = time.perf_counter()
        card_field.bring(card)
        tap = run_tap(
            session.transport, session.config, step.amount,
            switch=switch, card_timeout=timeout, pin=step.pin,
            pull_after=step.pull_after, pull=lambda: card_field.take_out(mid_tap=True),
            issuer_update=step.issuer_update, present_again=lambda: card_field.ask_again(card),
        )
        result.seconds = time.perf_counter() - started
        result.tap, result.timing = summary(tap.record), tap.timing
        if tap.update_ms is not None:
            result.detail["issuer_update_in_field_ms"] = round(tap.update_ms, 3)
        failures = check(step.expect.checks, tap.record)
        if step.pull_after is not None and not tap.pulled:
            failures.insert(0, f"the tap ended after {len(tap.record.get('apdus', []))} "
                               f"commands, before the card could be pulled after "
                               f"{step.pull_after}")
        result.over_budget = over_budget(tap.timing, budget)
        if session.options.strict_timing:
            failures += [f"over budget: {m}" for m in result.over_budget]
        if failures:
            result.status = Status.FAILED
            result.message = "; ".join(failures) + f" (reason: {tap.record.get('reason')})"
        _save_record(session, index, n, tap.record)
        yield result
        if result.status is not Status.PASSED:
            return


def _save_record(session: Session, index: int, n: int, record: dict[str, Any]) -> None:
    path = session.workdir / "taps" / f"step{index + 1:02d}-{n:02d}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def _event(session: Session, step: EventStep, index: int) -> Iterator[StepResult]:
    if session.switch is None:
        raise RigError("a lifecycle event needs the switch (the scenario says switch: false)")
    result = StepResult(index, step.kind, step.describe())
    subject = session.resolve(step.subject)
    affected = session.switch.event(step.event, subject, step.channel, step.params, step.via)
    result.detail = {"event": step.event, "channel": step.channel, "affected": affected,
                     "via": step.via}
    if step.affected is not None and affected != step.affected:
        result.status = Status.FAILED
        result.message = f"{step.event} changed {affected} device card(s), expected {step.affected}"
    yield result


def _replenish(session: Session, step: ReplenishStep, index: int) -> Iterator[StepResult]:
    if session.switch is None:
        raise RigError("replenishing needs the switch (the scenario says switch: false)")
    card = session.card(step.card)
    result = StepResult(index, step.kind, step.describe())
    args = ["card", "replenish", "--profile", str(card.profile), "--state", str(card.state),
            "--switch", session.switch.admin_address]
    if step.count is not None:
        args += ["--count", str(step.count)]
    result.detail["output"] = run_emvtap(args, env={ADMIN_TOKEN_ENV: session.switch.token}
                                         ).strip()
    yield result


def _present(session: Session, step: PresentStep, index: int) -> Iterator[StepResult]:
    assert session.card_field is not None
    session.card_field.bring(session.card(step.card))
    yield StepResult(index, step.kind, step.describe())


def _remove(session: Session, step: RemoveStep, index: int) -> Iterator[StepResult]:
    assert session.card_field is not None
    card = session.card(step.card)
    result = StepResult(index, step.kind, step.describe())
    if session.card_field.present is not card:
        result.status = Status.FAILED
        result.message = f"{step.card} is not in the field"
    else:
        session.card_field.take_out()
    yield result


def _wallet_of(session: Session, name: str) -> Path:
    from lab.hil.wallet_rig import WalletRig

    if session.switch is None:
        raise RigError("a wallet needs the switch (the scenario says switch: false)")
    if session.wallets is None:
        session.wallets = WalletRig(session.workdir, session.switch)
        session.stack.callback(session.wallets.stop)
    card = session.card(name)
    source = card.spec.source
    assert isinstance(source, ProvisionSource)
    return session.wallets.wallet(card, source.device, str(source.device_type))


def _in_app(session: Session, step: InAppStep, index: int) -> Iterator[StepResult]:
    card = session.card(step.card)
    if session.card_field is not None and session.card_field.present is card:
        session.card_field.take_out()  # the phone pays in an app, not at the reader
    wallet = _wallet_of(session, step.card)
    result = StepResult(index, step.kind, step.describe())
    started = time.perf_counter()
    outcome, code, output = session.wallets.pay(wallet, step.amount_text, step.passcode,
                                                f"{index + 1:02d}")
    result.seconds = time.perf_counter() - started
    result.detail = {"result": outcome, "response_code": code, "output": output}
    failures = [f"{key} {got!r}, expected {want!r}"
                for key, want, got in (("result", step.expect.get("result"), outcome),
                                       ("response_code", step.expect.get("response_code"), code))
                if want is not None and got != want]
    if failures:
        result.status = Status.FAILED
        result.message = "; ".join(failures) + f" ({output})"
    yield result


def _sync(session: Session, step: SyncStep, index: int) -> Iterator[StepResult]:
    result = StepResult(index, step.kind, step.describe())
    wallet = _wallet_of(session, step.card)
    result.detail["output"] = session.wallets.sync(wallet)
    yield result


#: Step kind → the function that runs it (yielding one result per tap or action).
STEP_HANDLERS: dict[type, Callable[[Session, Any, int], Iterator[StepResult]]] = {
    TapStep: _tap,
    EventStep: _event,
    ReplenishStep: _replenish,
    PresentStep: _present,
    RemoveStep: _remove,
    InAppStep: _in_app,
    SyncStep: _sync,
}


# --- scenarios ------------------------------------------------------------------------------

def _terminal_config(scenario: Scenario) -> TerminalConfig:
    try:
        return TerminalConfig.from_dict(TerminalConfig.defaults_dict() | scenario.terminal_config)
    except ConfigError as exc:
        raise ScenarioError(f"{scenario.path}: terminal.config: {exc}") from exc


def _open_transport(spec: str) -> Any:
    from terminal.transport import open_transport

    try:
        return open_transport(spec)
    except ModuleNotFoundError as exc:
        raise Unsupported(f"terminal reader {spec} (module {exc.name} is missing)") from exc
    except ValueError as exc:
        raise RigError(f"terminal reader {spec}: {exc}") from exc


def _close_transport(transport: Any) -> None:
    close = getattr(transport, "close", None) or transport.disconnect
    close()


def _setup(session: Session, stack: ExitStack) -> None:
    scenario = session.scenario
    session.stack = stack
    if scenario.switch:
        session.switch = SwitchProcess(session.workdir)
        stack.callback(session.switch.stop)
        session.switch.start()
    spans: dict[str, str] = {}
    for spec in scenario.cards.values():
        session.cards[spec.name] = prepare_card(spec, session.switch, session.workdir, spans)
    session.transport = _open_transport(session.readers.terminal)
    stack.callback(_close_transport, session.transport)
    session.card_field = Field(session.workdir, session.readers.card_link,
                               session.rig.person, lambda: session.rig.card_gone(session.readers),
                               session.rig.prepare_emulator)
    stack.callback(session.card_field.clear)


def run_scenario(scenario: Scenario, rig: Rig, options: RunOptions = RunOptions()
                 ) -> ScenarioResult:
    """Run *scenario* on *rig* (already opened) to a :class:`ScenarioResult`; never raises for
    what the scenario or the rig does (Ctrl-C goes through, after cleaning up)."""
    result = ScenarioResult(scenario.id, scenario.title, str(scenario.path), rig.name)
    started = time.perf_counter()
    why_not = rig.unavailable(scenario)
    if why_not:
        result.status, result.message = Status.NOT_RUN, f"not run on {rig.name}: {why_not}"
        return result
    workdir = _workdir(scenario, options)
    result.workdir = str(workdir)
    running: int | None = None  # the step in progress, for a stop raised inside it
    try:
        with ExitStack() as stack:
            session = Session(scenario, rig, rig.readers(), workdir, options,
                              _terminal_config(scenario))
            _setup(session, stack)
            for running, step in enumerate(scenario.steps):
                for step_result in STEP_HANDLERS[type(step)](session, step, running):
                    result.steps.append(step_result)
                    if options.on_step:
                        options.on_step(result, step_result)
                    if step_result.status is not Status.PASSED:
                        result.status = step_result.status
                        result.message = f"step {running + 1}: {step_result.message}"
                        return result
            running = None
    except Unsupported as exc:
        _stop(result, scenario, running, Status.UNSUPPORTED, str(exc))
    except NotRunnable as exc:
        _stop(result, scenario, running, Status.NOT_RUN, str(exc))
    except (RigError, ScenarioError, OSError) as exc:
        _stop(result, scenario, running, Status.ERROR, f"{type(exc).__name__}: {exc}")
    finally:
        result.seconds = time.perf_counter() - started
        _tidy(workdir, result, options)
    return result


def _stop(result: ScenarioResult, scenario: Scenario, running: int | None, status: Status,
          message: str) -> None:
    """End the scenario with *status*; a stop inside a step is put on that step."""
    result.status, result.message = status, message
    if running is None:
        return
    step = scenario.steps[running]
    result.steps.append(StepResult(running, step.kind, step.describe(), status, message))
    if status is not Status.UNSUPPORTED:
        result.message = f"step {running + 1} ({step.describe()}): {message}"


def _workdir(scenario: Scenario, options: RunOptions) -> Path:
    if options.workdir is not None:
        path = options.workdir / scenario.id
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path
    return Path(tempfile.mkdtemp(prefix=f"emvtap-hil-{scenario.id}-"))


def _tidy(workdir: Path, result: ScenarioResult, options: RunOptions) -> None:
    """Temporary work directories go, unless asked to keep them or something went wrong."""
    if options.workdir is None and not options.keep and result.status is not Status.FAILED \
            and result.status is not Status.ERROR:
        shutil.rmtree(workdir, ignore_errors=True)
        result.workdir = ""


def run_scenarios(scenarios: list[Scenario], rig: Rig, options: RunOptions = RunOptions(),
                  on_start: Callable[[Scenario], None] | None = None) -> list[ScenarioResult]:
    """Open *rig*, run every scenario on it (``on_start`` before each), close it."""
    rig.open()
    results = []
    try:
        for scenario in scenarios:
            if on_start:
                on_start(scenario)
            results.append(run_scenario(scenario, rig, options))
    finally:
        rig.close()
    return results
