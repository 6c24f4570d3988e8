"""The scenario model: what a hardware-in-the-loop scenario file says, as plain frozen data.

A scenario names the cards in play (who plays each one: the HCE software card, the Java Card
applet, or a real card or phone in a person's hand), then a list of steps: taps with their
expectations, lifecycle events through the switch, key replenishment, and the physical actions
of presenting and removing a card. ``docs/hil.md`` documents the YAML form;
:mod:`lab.hil.loader` turns a file into these objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emvtap.device_types import DeviceType

__all__ = [
    "Budget",
    "CardForm",
    "CardRef",
    "CardSpec",
    "EventStep",
    "Expectations",
    "PersoSource",
    "PresentStep",
    "ProfileSource",
    "ProvisionSource",
    "RemoveStep",
    "ReplenishStep",
    "Scenario",
    "Step",
    "TapStep",
]


class CardForm(enum.StrEnum):
    """Who plays a card in the field."""

    HCE = "hce"  # the software card, `emvtap card run`, on the emulator reader or vpcd/udp
    APPLET = "applet"  # the Java Card applet (jcardsim bridge), on vpcd
    REAL = "real"  # a real card or phone, presented by a person (hardware runs only)


@dataclass(frozen=True)
class PersoSource:
    """``emvtap perso --seed N`` then ``emvtap switch enroll``: a self-contained test card."""

    seed: int
    device_type: DeviceType = DeviceType.HANDSET_SE
    balance: str = "1000.00"
    no_password_limit: str = ""  # "" = the switch's default (0)


@dataclass(frozen=True)
class ProvisionSource:
    """Over-the-air issuance through the switch's TSP: an account and a physical card (SPAN)
    at the issuer, then the SPAN bound to a device (a new MPAN and its profile).

    Cards that name the same ``span`` (a label, not digits) share one physical card; cards that
    name the same ``device`` sit on one device."""

    device: str
    device_type: DeviceType = DeviceType.HANDSET_SE
    span: str = ""  # label of the physical card; "" = a card of its own
    balance: str = "1000.00"
    no_password_limit: str = ""  # in-app limit of the physical card; "" = the switch's (0)
    scheme: str = "quickpass"  # quickpass | visa | mastercard
    purpose: str = "contactless"  # the token's domain: contactless | in-app | any


@dataclass(frozen=True)
class ProfileSource:
    """A profile file shipped with the scenario (path relative to the scenario file)."""

    path: Path
    enroll: bool = True
    balance: str = "1000.00"
    no_password_limit: str = ""


@dataclass(frozen=True)
class CardSpec:
    name: str
    form: CardForm
    source: PersoSource | ProvisionSource | ProfileSource | None  # None: a real card
    cdcvm: bool = False  # the wallet has verified its user (`card run --cdcvm`)
    #: the transaction PIN of the card's account at the issuer (kept out of reprs)
    pin: str | None = field(default=None, repr=False)
    prompt: str = ""  # what the person should present (real cards)


@dataclass(frozen=True)
class CardRef:
    """``phone.mpan`` / ``phone.span`` / ``phone.device``: a value known once the card exists."""

    card: str
    attribute: str  # mpan | span | device

    def __str__(self) -> str:
        return f"{self.card}.{self.attribute}"


@dataclass(frozen=True)
class Budget:
    """Timing budgets, in milliseconds. Reported and flagged, never a failure unless the run
    asks for ``--strict-timing`` (CI machines are noisy)."""

    tap_ms: float | None = None  # card in the field: first command to last response
    apdu_ms: float | None = None  # any single command-response round trip

    def merged(self, override: Budget | None) -> Budget:
        if override is None:
            return self
        return Budget(
            override.tap_ms if override.tap_ms is not None else self.tap_ms,
            override.apdu_ms if override.apdu_ms is not None else self.apdu_ms,
        )


@dataclass(frozen=True)
class Expectations:
    """What a tap must end with: ``checks`` maps an expectation key of
    :data:`lab.hil.expect.EXPECTATIONS` to the accepted value (or list of values)."""

    checks: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.checks)


@dataclass(frozen=True)
class TapStep:
    card: str
    amount: int  # minor units
    amount_text: str
    expect: Expectations
    #: what the cardholder types on the PIN pad, if asked (kept out of reprs)
    pin: str | None = field(default=None, repr=False)
    pull_after: int | None = None  # the card leaves the field after this many commands
    repeat: int = 1
    issuer_update: bool = True  # "present card again": deliver what the host sent
    budget: Budget | None = None
    title: str = ""

    kind = "tap"

    def describe(self) -> str:
        what = f"tap {self.card} {self.amount_text}"
        if self.pull_after is not None:
            what += f", pulled after {self.pull_after} commands"
        if self.repeat > 1:
            what += f" ×{self.repeat}"
        return self.title or what


@dataclass(frozen=True)
class EventStep:
    event: str  # switch/LIFECYCLE.md event name
    subject: CardRef | str
    channel: str
    params: dict[str, Any] = field(default_factory=dict)
    via: str = "api"  # api (admin HTTP API) | cli (emvtap switch event)
    affected: int | None = None  # expected number of device cards changed
    title: str = ""

    kind = "event"

    def describe(self) -> str:
        return self.title or f"{self.event} {self.subject} by {self.channel} ({self.via})"


@dataclass(frozen=True)
class ReplenishStep:
    card: str
    count: int | None = None
    title: str = ""

    kind = "replenish"

    def describe(self) -> str:
        return self.title or f"replenish {self.card}'s limited-use keys"


@dataclass(frozen=True)
class PresentStep:
    card: str
    title: str = ""

    kind = "present"

    def describe(self) -> str:
        return self.title or f"present {self.card}"


@dataclass(frozen=True)
class RemoveStep:
    card: str
    title: str = ""

    kind = "remove"

    def describe(self) -> str:
        return self.title or f"remove {self.card}"


@dataclass(frozen=True)
class InAppStep:
    """An in-app payment from the card's wallet to the scenario's merchant (``emvtap wallet
    pay-in-app`` + ``emvtap merchant charge``); ``expect``: ``result`` (APPROVED, DECLINED, or
    REFUSED by the device) and ``response_code``."""

    card: str
    amount: int
    amount_text: str
    passcode: str | None = field(default=None, repr=False)
    expect: dict[str, str] = field(default_factory=dict)
    title: str = ""

    kind = "in_app"

    def describe(self) -> str:
        how = "with the passcode" if self.passcode else "without the passcode"
        return self.title or f"in-app {self.card} {self.amount_text} {how}"


@dataclass(frozen=True)
class SyncStep:
    """The card's wallet fetches the network's pushes through the wallet server."""

    card: str
    title: str = ""

    kind = "sync"

    def describe(self) -> str:
        return self.title or f"{self.card}'s wallet syncs with the wallet server"


Step = TapStep | EventStep | ReplenishStep | PresentStep | RemoveStep | InAppStep | SyncStep


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    path: Path
    cards: dict[str, CardSpec]
    steps: tuple[Step, ...]
    budget: Budget = Budget()
    needs: frozenset[str] = frozenset()  # "hardware": real readers only
    terminal_config: dict[str, Any] = field(default_factory=dict)
    switch: bool = True  # start a switch (False: the terminal has no online link)
    card_timeout: float = 10.0
    description: str = ""
    tags: tuple[str, ...] = ()

    @property
    def hardware_only(self) -> bool:
        return "hardware" in self.needs or any(
            c.form is CardForm.REAL for c in self.cards.values()
        )
