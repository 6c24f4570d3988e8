"""The card profile: everything a personalisation bureau writes into a card, as JSON.

One profile personalises the HCE card and the Java Card applet (see docs/contracts.md), and
`emvtap switch enroll` takes the token, the SPAN and the card keys from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emvtap.rsa import RsaKey

PROFILE_FORMAT = "emvtap-card-profile/1"

__all__ = [
    "PROFILE_FORMAT",
    "ApplicationProfile",
    "CardKeys",
    "CardProfile",
    "CardRisk",
    "ProfileError",
    "Record",
    "TokenInfo",
]


class ProfileError(ValueError):
    """A profile that is not one emvtap can personalise from (missing or malformed field)."""


def _hex(d: dict[str, Any], key: str, default: str | None = None) -> bytes:
    v = d.get(key, default)
    if v is None:
        raise ProfileError(f"missing field {key!r}")
    try:
        return bytes.fromhex(v)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"field {key!r} is not hex: {v!r}") from exc


@dataclass(frozen=True)
class Record:
    sfi: int
    record: int
    data: bytes  # the whole record as served, template 70 included
    dynamic: tuple[int, ...] = ()  # tags the card fills in per transaction (e.g. 9F69)


@dataclass(frozen=True)
class CardKeys:
    """ICC master keys (derived from the issuer master keys at perso, Book 2 A1.4)."""

    ac: bytes
    smi: bytes
    smc: bytes


@dataclass(frozen=True)
class CardRisk:
    """The card's own risk parameters for the qPBOC quick path (C-7 card risk management)."""

    offline_amount_limit: int = 0  # minor units; above it the card asks to go online
    consecutive_offline_limit: int = 0  # 9F23-like: after that many offline TCs, go online
    allow_offline: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "offline_amount_limit": self.offline_amount_limit,
            "consecutive_offline_limit": self.consecutive_offline_limit,
            "allow_offline": self.allow_offline,
        }


@dataclass(frozen=True)
class ApplicationProfile:
    aid: bytes
    label: str
    kernel_id: int
    priority: int
    fci: bytes
    pdol: bytes
    aip: bytes
    afl: bytes
    records: tuple[Record, ...]
    cdol1: bytes
    cdol2: bytes
    ddol: bytes
    cvn: int
    dki: int
    ctq: bytes
    fdda_version: int
    risk: CardRisk
    get_data: dict[int, bytes]
    keys: CardKeys
    icc_rsa: RsaKey | None
    capk_rid: bytes
    capk_index: int
    track2: bytes
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, sfi: int, number: int) -> Record | None:
        return next((r for r in self.records if r.sfi == sfi and r.record == number), None)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApplicationProfile:
        try:
            keys = d["keys"]
            risk = d.get("risk", {})
            return cls(
                aid=_hex(d, "aid"),
                label=str(d.get("label", "")),
                kernel_id=int(d.get("kernel_id", 7)),
                priority=int(d.get("priority", 1)),
                fci=_hex(d, "fci"),
                pdol=_hex(d, "pdol", ""),
                aip=_hex(d, "aip"),
                afl=_hex(d, "afl"),
                records=tuple(
                    Record(int(r["sfi"]), int(r["record"]), bytes.fromhex(r["data"]),
                           tuple(int(t, 16) for t in r.get("dynamic", ())))
                    for r in d["records"]
                ),
                cdol1=_hex(d, "cdol1", ""),
                cdol2=_hex(d, "cdol2", ""),
                ddol=_hex(d, "ddol", ""),
                cvn=int(d.get("cvn", 1)),
                dki=int(d.get("dki", "01"), 16),
                ctq=_hex(d, "ctq"),
                fdda_version=int(d.get("fdda_version", "01"), 16),
                risk=CardRisk(
                    offline_amount_limit=int(risk.get("offline_amount_limit", 0)),
                    consecutive_offline_limit=int(risk.get("consecutive_offline_limit", 0)),
                    allow_offline=bool(risk.get("allow_offline", True)),
                ),
                get_data={int(k, 16): bytes.fromhex(v) for k, v in d.get("get_data", {}).items()},
                keys=CardKeys(_hex(keys, "ac"), _hex(keys, "smi"), _hex(keys, "smc")),
                icc_rsa=RsaKey.from_dict(d["icc_rsa"]) if d.get("icc_rsa") else None,
                capk_rid=_hex(d.get("capk", {}), "rid"),
                capk_index=int(d.get("capk", {}).get("index", "00"), 16),
                track2=_hex(d, "track2"),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ProfileError(f"application {d.get('aid', '?')}: missing {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "aid": self.aid.hex().upper(),
            "label": self.label,
            "kernel_id": self.kernel_id,
            "priority": self.priority,
            "fci": self.fci.hex().upper(),
            "pdol": self.pdol.hex().upper(),
            "aip": self.aip.hex().upper(),
            "afl": self.afl.hex().upper(),
            "records": [
                {"sfi": r.sfi, "record": r.record, "data": r.data.hex().upper()}
                | ({"dynamic": [f"{t:X}" for t in r.dynamic]} if r.dynamic else {})
                for r in self.records
            ],
            "cdol1": self.cdol1.hex().upper(),
            "cdol2": self.cdol2.hex().upper(),
            "ddol": self.ddol.hex().upper(),
            "cvn": self.cvn,
            "dki": f"{self.dki:02X}",
            "ctq": self.ctq.hex().upper(),
            "fdda_version": f"{self.fdda_version:02X}",
            "risk": self.risk.to_dict(),
            "get_data": {f"{k:X}": v.hex().upper() for k, v in self.get_data.items()},
            "track2": self.track2.hex().upper(),
            "keys": {
                "ac": self.keys.ac.hex().upper(),
                "smi": self.keys.smi.hex().upper(),
                "smc": self.keys.smc.hex().upper(),
            },
            "icc_rsa": self.icc_rsa.to_dict() if self.icc_rsa else None,
            "capk": {"rid": self.capk_rid.hex().upper(), "index": f"{self.capk_index:02X}"},
        }
        if self.extra:
            out["extra"] = self.extra
        return out


@dataclass(frozen=True)
class TokenInfo:
    """The device card's token data (spec/tokens.md): MPAN standing for the SPAN."""

    mpan: str
    span: str
    span_expiry: str
    token_expiry: str
    device_id: str
    device_type: str  # "handset-se" | "wearable-se" | "hce"
    token_requestor_id: str
    par: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CardProfile:
    pan: str
    psn: str
    expiry: str  # YYMMDD
    effective: str  # YYMMDD
    ppse_fci: bytes
    applications: tuple[ApplicationProfile, ...]
    token: TokenInfo | None = None
    seed: int | None = None

    @property
    def application(self) -> ApplicationProfile:
        return self.applications[0]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CardProfile:
        if d.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"not an emvtap card profile (format {d.get('format')!r}, "
                               f"expected {PROFILE_FORMAT!r})")
        try:
            apps = tuple(ApplicationProfile.from_dict(a) for a in d["applications"])
            if not apps:
                raise ProfileError("profile has no applications")
            token = TokenInfo(**d["token"]) if d.get("token") else None
            return cls(
                pan=str(d["pan"]),
                psn=str(d.get("psn", "00")),
                expiry=str(d["expiry"]),
                effective=str(d.get("effective", "000101")),
                ppse_fci=_hex(d["ppse"], "fci"),
                applications=apps,
                token=token,
                seed=d.get("seed"),
            )
        except (KeyError, TypeError) as exc:
            raise ProfileError(f"profile: missing or malformed {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": PROFILE_FORMAT}
        if self.seed is not None:
            out["seed"] = self.seed
        out |= {
            "pan": self.pan,
            "psn": self.psn,
            "expiry": self.expiry,
            "effective": self.effective,
        }
        if self.token:
            out["token"] = self.token.to_dict()
        out["ppse"] = {"fci": self.ppse_fci.hex().upper()}
        out["applications"] = [a.to_dict() for a in self.applications]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> CardProfile:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{path}: not JSON ({exc})") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())
