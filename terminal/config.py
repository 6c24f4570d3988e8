"""Terminal configuration: the data a payment terminal is loaded with (EMV 4.4 Book 4, 4.3;
Contactless Book B, 3.1.1 AID/kernel combinations with their limits).

Defaults ship with the package (``terminal/data/terminal.json``) and are documented in
``docs/terminal-config.md``; a user file (JSON) overrides them field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Combination", "ConfigError", "TerminalConfig"]


class ConfigError(ValueError):
    """A terminal configuration emvtap cannot use."""


@dataclass(frozen=True)
class Combination:
    """One AID/kernel combination with its Entry Point limits (Book B, 3.1.1.1)."""

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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Combination:
        try:
            return cls(
                aid=bytes.fromhex(d["aid"]),
                kernel_id=int(d["kernel_id"]),
                partial=bool(d.get("partial", True)),
                label=str(d.get("label", "")),
                ttq=bytes.fromhex(d.get("ttq", "2600C080")),
                transaction_limit=d.get("transaction_limit"),
                cvm_required_limit=d.get("cvm_required_limit"),
                floor_limit=d.get("floor_limit"),
                zero_amount_allowed=bool(d.get("zero_amount_allowed", False)),
                status_check=bool(d.get("status_check", False)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"combination {d!r}: {exc}") from exc

    def matches(self, adf_name: bytes) -> bool:
        """Book B, 3.3.2.5: exact match, or partial when the card's ADF name extends the AID."""
        return adf_name == self.aid or (self.partial and adf_name.startswith(self.aid))


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
    tac_default: bytes
    tac_denial: bytes
    tac_online: bytes

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TerminalConfig:
        try:
            return cls(
                terminal_type=bytes.fromhex(d["terminal_type"]),
                terminal_capabilities=bytes.fromhex(d["terminal_capabilities"]),
                additional_terminal_capabilities=bytes.fromhex(
                    d["additional_terminal_capabilities"]),
                terminal_country_code=bytes.fromhex(d["terminal_country_code"]),
                transaction_currency_code=bytes.fromhex(d["transaction_currency_code"]),
                transaction_currency_exponent=int(d["transaction_currency_exponent"]),
                merchant_category_code=bytes.fromhex(d["merchant_category_code"]),
                terminal_id=str(d["terminal_id"]),
                merchant_id=str(d["merchant_id"]),
                merchant_name_location=str(d.get("merchant_name_location", "")),
                ifd_serial_number=str(d.get("ifd_serial_number", "00000000")),
                application_version=bytes.fromhex(d.get("application_version", "0030")),
                production=bool(d.get("production", False)),
                online_capable=bool(d.get("online_capable", True)),
                switch=str(d.get("switch", "127.0.0.1:8583")),
                online_timeout_seconds=float(d.get("online_timeout_seconds", 10)),
                combinations=tuple(Combination.from_dict(c) for c in d["combinations"]),
                default_kernels={bytes.fromhex(k): int(v)
                                 for k, v in d.get("default_kernels", {}).items()},
                tac_default=bytes.fromhex(d["tac"]["default"]),
                tac_denial=bytes.fromhex(d["tac"]["denial"]),
                tac_online=bytes.fromhex(d["tac"]["online"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
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
                data |= json.loads(Path(path).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{path}: {exc}") from exc
        return cls.from_dict(data)

    def kernel_for(self, aid: bytes) -> int | None:
        """Default kernel of an AID when the card gives no 9F2A (Book B, 3.3.2.5)."""
        return self.default_kernels.get(aid[:5])
