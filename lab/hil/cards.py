"""The cards of a scenario: made (``emvtap perso`` + ``emvtap switch enroll``, or issued over
the air through the switch's TSP, or a shipped profile), then put into and taken out of the
terminal's field.

Who plays a card decides what "present" and "remove" mean (:data:`CARD_COMMANDS`):

- the HCE card and the applet bridge are processes (``emvtap card run …``) on the rig's card
  link: presenting starts the process, removing stops it (on the emulator reader the card
  then leaves the terminal's field, on vpcd the virtual reader goes empty); their state (ATC,
  keys) is in files in the scenario's work directory, so a card taken out and presented again
  is the same card;
- a real card or phone is in a person's hand: the runner asks for it.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emvtap.endpoints import CARD_LINK_KINDS, EndpointKind, SpecError, parse_endpoint
from emvtap.masking import masked_repr
from emvtap.perso import ISSUER_BIN, make_pan
from emvtap.private_files import write_private_text
from emvtap.profile import CardProfile, ProfileError
from lab.hil.loader import parse_amount
from lab.hil.model import (
    CardForm,
    CardSpec,
    PersoSource,
    ProfileSource,
    ProvisionSource,
)
from lab.hil.person import Person
from lab.hil.procs import Child, run_emvtap
from lab.hil.results import RigError, Unsupported
from lab.hil.switch_link import SwitchProcess

__all__ = ["CARD_COMMANDS", "Card", "CardCommand", "Field", "prepare_card"]


@dataclass
class Card:
    """A card of the scenario, made: its profile and state files and its identities at the
    switch (MPAN, SPAN, device id)."""

    spec: CardSpec
    profile: Path | None = None
    state: Path | None = None
    mpan: str = ""
    span: str = ""
    device: str = ""

    def __repr__(self) -> str:
        return masked_repr(self, ("mpan", "span"))

    @property
    def name(self) -> str:
        return self.spec.name

    def value(self, attribute: str) -> str:
        """``mpan`` / ``span`` / ``device`` of a card reference."""
        value = {"mpan": self.mpan, "span": self.span, "device": self.device}[attribute]
        if not value:
            raise RigError(f"{self.name} has no {attribute} (its profile names none)")
        return value

    def learn(self, profile: dict) -> None:  # type: ignore[type-arg]
        """Read the card's MPAN, SPAN and device from its profile (the core's model)."""
        try:
            card_profile = CardProfile.from_dict(profile)
        except ProfileError as exc:
            raise RigError(f"{self.name}: {exc}") from None
        token = card_profile.token
        self.mpan = token.mpan if token else card_profile.pan
        self.span = token.span if token else ""
        self.device = token.device_id if token else ""


# --- making cards ---------------------------------------------------------------------------

def _write_profile(card: Card, workdir: Path, profile: dict) -> None:  # type: ignore[type-arg]
    card.profile = workdir / f"{card.name}.json"
    write_private_text(card.profile, json.dumps(profile, indent=1) + "\n")  # it holds keys
    card.learn(profile)


def _perso(card: Card, source: PersoSource, switch: SwitchProcess | None, workdir: Path,
           spans: dict[str, str]) -> None:
    card.profile = workdir / f"{card.name}.json"
    run_emvtap(["perso", "--seed", str(source.seed), "--out", str(card.profile),
                "--device-type", source.device_type])
    card.learn(json.loads(card.profile.read_text()))
    if switch is not None:
        switch.enroll(card.profile, source.balance, no_password_limit=source.no_password_limit,
                      pin=card.spec.pin)


def span_for(scenario_id: str, label: str) -> str:
    """A SPAN of the test issuer's BIN, the same for the same scenario and card label."""
    return make_pan(ISSUER_BIN, random.Random(f"emvtap-hil/{scenario_id}/{label}"))


def _provision(card: Card, source: ProvisionSource, switch: SwitchProcess | None,
               workdir: Path, spans: dict[str, str]) -> None:
    if switch is None:
        raise RigError(f"{card.name}: provisioning needs the switch (switch: false)")
    label = source.span or card.name
    if label not in spans:
        spans[label] = span_for(workdir.name, label)
        limit = parse_amount(source.no_password_limit or 0)[0]
        switch.open_card(spans[label], label, parse_amount(source.balance)[0],
                         no_password_limit=limit, pin=card.spec.pin)
    issued = switch.provision(spans[label], source.device, source.device_type, source.scheme,
                              source.purpose)
    _write_profile(card, workdir, issued["profile"])


def _profile(card: Card, source: ProfileSource, switch: SwitchProcess | None, workdir: Path,
             spans: dict[str, str]) -> None:
    _write_profile(card, workdir, json.loads(source.path.read_text()))
    if source.enroll and switch is not None:
        assert card.profile is not None
        switch.enroll(card.profile, source.balance, no_password_limit=source.no_password_limit,
                      pin=card.spec.pin)


#: How each kind of card source is made.
MAKERS: dict[type, Callable[..., None]] = {
    PersoSource: _perso,
    ProvisionSource: _provision,
    ProfileSource: _profile,
}


def prepare_card(spec: CardSpec, switch: SwitchProcess | None, workdir: Path,
                 spans: dict[str, str]) -> Card:
    """Make *spec*'s card in *workdir* (``spans``: physical cards already opened, by label)."""
    card = Card(spec)
    if spec.source is not None:
        MAKERS[type(spec.source)](card, spec.source, switch, workdir, spans)
        card.state = workdir / f"{card.name}.state.json"
    return card


# --- the field -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CardCommand:
    """How a card form runs as a process: its ``emvtap`` arguments and its ready banner."""

    what: str
    args: Callable[[Card, str], list[str]]
    ready: re.Pattern[str]
    #: the card link kinds it can serve
    links: tuple[EndpointKind, ...] = (EndpointKind.VPCD, EndpointKind.NFC)
    start_timeout: float = 30.0  # seconds until its banner


def _hce_args(card: Card, link: str) -> list[str]:
    args = ["card", "run", "--profile", str(card.profile), "--state", str(card.state),
            "--link", link]
    return [*args, "--cdcvm"] if card.spec.cdcvm else args


def _applet_args(card: Card, link: str) -> list[str]:
    if card.spec.cdcvm:
        raise Unsupported("CDCVM on the Java Card applet (`card run --applet` has no --cdcvm)")
    return ["card", "run", "--applet", "--profile", str(card.profile), "--link", link]


#: Emulated card forms → how to run them.
CARD_COMMANDS: dict[CardForm, CardCommand] = {
    CardForm.HCE: CardCommand("HCE card (emvtap card run)", _hce_args,
                              re.compile(r"Ctrl-C to stop")),
    CardForm.APPLET: CardCommand("Java Card applet (jcardsim bridge, emvtap card run --applet)",
                                 _applet_args, re.compile(r"^(READY|CONNECTED)\b"),
                                 # the first start may build the jar
                                 links=(EndpointKind.VPCD,), start_timeout=300.0),
}


@dataclass
class Field:
    """The terminal reader's field: which card is in it, and how cards come and go.

    ``link`` is the card link the emulated cards are served on; ``card_gone`` waits until the
    terminal's reader has seen the card leave (so the next card is a new card event);
    ``prepare_emulator`` runs before an emulated card is presented (on real readers: once,
    the person lays the emulator on the terminal reader)."""

    workdir: Path
    link: str
    person: Person
    card_gone: Callable[[], None]
    prepare_emulator: Callable[[], None]
    present: Card | None = None
    _process: Child | None = None

    def bring(self, card: Card) -> None:
        """Make *card* the one in the field (taking out another one first)."""
        if self.present is card:
            self._check_alive()
            return
        if self.present is not None:
            self.take_out()
        self._put_in(card)

    def _put_in(self, card: Card) -> None:
        if card.spec.form is CardForm.REAL:
            self.person.tell(f"Present {card.spec.prompt or 'the card or phone'} "
                             f"({card.name}) to the terminal reader and hold it there.")
            self.present = card
            return
        command = CARD_COMMANDS[card.spec.form]
        try:
            kind = parse_endpoint(self.link, CARD_LINK_KINDS, bare_kind=True).kind
        except SpecError as exc:
            raise RigError(f"card link of the rig: {exc}") from None
        if kind not in command.links:
            raise Unsupported(f"the {command.what} on an {kind} link "
                              f"(it runs on {', '.join(command.links)} only)")
        self.prepare_emulator()
        child = Child(f"card {card.name}", command.args(card, self.link),
                      self.workdir / f"{card.name}.card.log", command.ready)
        child.start()
        try:
            child.wait_ready(command.start_timeout)
        except Exception:
            child.stop()
            raise
        self._process, self.present = child, card

    def take_out(self, *, mid_tap: bool = False) -> None:
        """Take the card in the field out (mid-tap: between two commands of a transaction)."""
        card = self.present
        if card is None:
            return
        self.present = None
        if card.spec.form is CardForm.REAL:
            when = "NOW, in the middle of the transaction" if mid_tap else "from the reader"
            self.person.confirm(f"Remove {card.spec.prompt or card.name} {when}.")
            return
        process, self._process = self._process, None
        if process is not None:
            process.stop()
        self.card_gone()

    def _check_alive(self) -> None:
        if self._process is not None and not self._process.alive:
            raise RigError(f"card process {self._process.name} exited "
                           f"(code {self._process.returncode}):\n{self._process.tail()}")

    def ask_again(self, card: Card) -> None:
        """Issuer update: "present card again". An emulated card never left the field; a
        person is asked to tap again."""
        if card.spec.form is CardForm.REAL:
            self.person.tell(f"Present {card.spec.prompt or card.name} again "
                             "(issuer update).")
        else:
            self._check_alive()

    def clear(self) -> None:
        self.take_out()
