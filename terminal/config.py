"""Terminal configuration: the data a payment terminal is loaded with (EMV 4.4 Book 4, 4.3 and
Annex A; Book 3, 10.6 terminal risk management parameters; Contactless Book B, 3.1.1 AID/kernel
combinations with their limits).

Defaults ship with the package (``terminal/data/terminal.json``) and are documented field by
field in ``docs/terminal-config.md``; a user file (JSON) overrides them key by key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "Combination",
    "ConfigError",
    "RandomSelection",
    "RevokedCertificate",
    "TerminalActionCodes",
    "TerminalConfig",
]


class ConfigError(ValueError):
    """A terminal configuration emvtap cannot use."""


def _hex(value: Any, what: str, length: int | None = None, secret: bool = False) -> bytes:
    """``secret``: a key, whose value no message repeats."""
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        shown = "the value" if secret else repr(value)
        raise ConfigError(f"{what}: {shown} is not hex") from None
    if length is not None and len(raw) != length:
        raise ConfigError(f"{what}: {len(raw)} bytes, expected {length}")
    return raw


def _limit(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what}: {value!r} is not an amount in minor units")
    return value


@dataclass(frozen=True)
class TerminalActionCodes:
    """Terminal Action Codes - Default, Denial, Online (Book 3, 10.7; Book 4, 6.3.6)."""

    default: bytes
    denial: bytes
    online: bytes

    @classmethod
    def from_dict(cls, d: dict[str, Any], what: str = "tac") -> TerminalActionCodes:
        try:
            return cls(_hex(d["default"], f"{what}.default", 5),
                       _hex(d["denial"], f"{what}.denial", 5),
                       _hex(d["online"], f"{what}.online", 5))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{what}: missing {exc}") from exc


@dataclass(frozen=True)
class Combination:
    """One AID/kernel combination with its Entry Point configuration data (Book B, 3.1.1 and
    Table 3-2): limits, the options zero amount / status check / extended selection, the TTQ
    (kernels 3 and 7), and what differs per scheme (9F09, Terminal Action Codes)."""

    aid: bytes
    kernel_id: int
    partial: bool
    label: str
    ttq: bytes
    transaction_limit: int | None
    cvm_required_limit: int | None
    floor_limit: int | None
    zero_amount_allowed: bool
    status_check: bool
    extended_selection: bool = False
    application_version: bytes | None = None
    tac: TerminalActionCodes | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Combination:
        where = f"combination {d.get('aid', '?')}"
        try:
            return cls(
                aid=_hex(d["aid"], f"{where}: aid"),
                kernel_id=int(d["kernel_id"]),
                partial=bool(d.get("partial", True)),
                label=str(d.get("label", "")),
                ttq=_hex(d.get("ttq", "2600C080"), f"{where}: ttq", 4),
                transaction_limit=_limit(d.get("transaction_limit"), f"{where}: transaction_limit"),
                cvm_required_limit=_limit(d.get("cvm_required_limit"),
                                          f"{where}: cvm_required_limit"),
                floor_limit=_limit(d.get("floor_limit"), f"{where}: floor_limit"),
                zero_amount_allowed=bool(d.get("zero_amount_allowed", False)),
                status_check=bool(d.get("status_check", False)),
                extended_selection=bool(d.get("extended_selection", False)),
                application_version=_hex(d["application_version"], f"{where}: 9F09", 2)
                if d.get("application_version") else None,
                tac=TerminalActionCodes.from_dict(d["tac"], f"{where}: tac")
                if d.get("tac") else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{where}: {exc!r}") from exc

    def matches(self, adf_name: bytes) -> bool:
        """Book B, 3.3.2.5: exact match, or partial when the card's ADF name extends the AID."""
        return adf_name == self.aid or (self.partial and adf_name.startswith(self.aid))


@dataclass(frozen=True)
class RandomSelection:
    """Random transaction selection parameters (Book 3, 10.6.2): the target percentage below
    the threshold, rising to the maximum target percentage at the floor limit."""

    target_percentage: int = 0
    max_target_percentage: int = 0
    threshold: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RandomSelection:
        tp, mtp = int(d.get("target_percentage", 0)), int(d.get("max_target_percentage", 0))
        if not 0 <= tp <= mtp <= 99:
            raise ConfigError("random_selection: need 0 <= target_percentage <= "
                              "max_target_percentage <= 99")
        return cls(tp, mtp, _limit(d.get("threshold", 0), "random_selection: threshold") or 0)


@dataclass(frozen=True)
class RevokedCertificate:
    """One entry of the CA revocation list: RID ‖ CA index ‖ certificate serial (Book 2, 5.3
    step 10)."""

    rid: bytes
    index: int
    serial: bytes


@dataclass(frozen=True)
class TerminalConfig:
    terminal_type: bytes
    terminal_capabilities: bytes
    additional_terminal_capabilities: bytes
    terminal_country_code: bytes
    transaction_currency_code: bytes
    transaction_currency_exponent: int
    merchant_category_code: bytes
    terminal_id: str
    merchant_id: str
    merchant_name_location: str
    ifd_serial_number: str
    application_version: bytes
    production: bool
    online_capable: bool
    switch: str
    online_timeout_seconds: float
    combinations: tuple[Combination, ...]
    default_kernels: dict[bytes, int]
    tac: TerminalActionCodes
    terminal_floor_limit: int | None = None
    random_selection: RandomSelection = field(default_factory=RandomSelection)
    exception_file: frozenset[str] = field(default=frozenset(), repr=False)  # PANs
    revocation_list: tuple[RevokedCertificate, ...] = ()
    default_ddol: bytes = bytes.fromhex("9F3704")
    default_tdol: bytes = bytes.fromhex("9F02065F2A029A039C0195059F3704")
    pin_pad: bool = True
    pin_encryption_key: bytes = field(default=bytes(16), repr=False)
    use_pse: bool = False
    issuer_update_timeout_seconds: float = 30.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TerminalConfig:
        try:
            risk = d.get("risk_management", {})
            return cls(
                terminal_type=_hex(d["terminal_type"], "terminal_type", 1),
                terminal_capabilities=_hex(d["terminal_capabilities"],
                                           "terminal_capabilities", 3),
                additional_terminal_capabilities=_hex(
                    d["additional_terminal_capabilities"], "additional_terminal_capabilities", 5),
                terminal_country_code=_hex(d["terminal_country_code"],
                                           "terminal_country_code", 2),
                transaction_currency_code=_hex(d["transaction_currency_code"],
                                               "transaction_currency_code", 2),
                transaction_currency_exponent=int(d["transaction_currency_exponent"]),
                merchant_category_code=_hex(d["merchant_category_code"],
                                            "merchant_category_code", 2),
                terminal_id=str(d["terminal_id"]),
                merchant_id=str(d["merchant_id"]),
                merchant_name_location=str(d.get("merchant_name_location", "")),
                ifd_serial_number=str(d.get("ifd_serial_number", "00000000")),
                application_version=_hex(d.get("application_version", "0030"),
                                         "application_version", 2),
                production=bool(d.get("production", False)),
                online_capable=bool(d.get("online_capable", True)),
                switch=str(d.get("switch", "127.0.0.1:8583")),
                online_timeout_seconds=float(d.get("online_timeout_seconds", 10)),
                combinations=tuple(Combination.from_dict(c) for c in d["combinations"]),
                default_kernels={_hex(k, "default_kernels"): int(v)
                                 for k, v in d.get("default_kernels", {}).items()},
                tac=TerminalActionCodes.from_dict(d["tac"]),
                terminal_floor_limit=_limit(d.get("terminal_floor_limit"),
                                            "terminal_floor_limit"),
                random_selection=RandomSelection.from_dict(risk.get("random_selection", {})),
                exception_file=frozenset(str(p) for p in risk.get("exception_file", ())),
                revocation_list=tuple(
                    RevokedCertificate(_hex(r["rid"], "revocation_list: rid", 5),
                                       int(str(r["index"]), 16),
                                       _hex(r["serial"], "revocation_list: serial", 3))
                    for r in d.get("revocation_list", ())),
                default_ddol=_hex(d.get("default_ddol", "9F3704"), "default_ddol"),
                default_tdol=_hex(d.get("default_tdol", "9F02065F2A029A039C0195059F3704"),
                                  "default_tdol"),
                pin_pad=bool(d.get("pin_pad", True)),
                pin_encryption_key=_hex(d.get("pin_encryption_key", "00" * 16),
                                        "pin_encryption_key", 16, secret=True),
                use_pse=bool(d.get("use_pse", False)),
                issuer_update_timeout_seconds=float(d.get("issuer_update_timeout_seconds", 30)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"terminal configuration: {exc!r}") from exc

    @classmethod
    def defaults_dict(cls) -> dict[str, Any]:
        text = resources.files("terminal").joinpath("data/terminal.json").read_text()
        return json.loads(text)

    @classmethod
    def default(cls) -> TerminalConfig:
        return cls.from_dict(cls.defaults_dict())

    @classmethod
    def load(cls, path: str | Path | None) -> TerminalConfig:
        """The shipped defaults, overridden by the keys of the user's JSON file."""
        data = cls.defaults_dict()
        if path:
            try:
                user = json.loads(Path(path).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{path}: {exc}") from exc
            if not isinstance(user, dict):
                raise ConfigError(f"{path}: not a JSON object")
            data |= user
        return cls.from_dict(data)

    def kernel_for(self, aid: bytes) -> int | None:
        """Default kernel of an AID when the card gives no 9F2A (Book B, 3.3.2.5)."""
        return self.default_kernels.get(aid[:5])
