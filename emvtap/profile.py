"""The card profile: everything a personalisation bureau writes into a card, as JSON.

One profile personalises the HCE card and the Java Card applet (see docs/contracts.md), and
`emvtap switch enroll` takes the token, the SPAN and the card keys from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emvtap.device_types import DeviceType
from emvtap.dol import AflError, parse_afl, parse_dol
from emvtap.masking import masked_repr
from emvtap.private_files import write_private_text
from emvtap.rsa import RsaKey
from emvtap.tlv import TlvError

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


_MISSING = object()


def _field(d: Mapping[str, Any], key: str, default: Any = _MISSING, where: str = "") -> Any:
    if not isinstance(d, Mapping):
        raise ProfileError(f"{where or 'profile'} is not a JSON object: {d!r}")
    v = d.get(key, default)
    if v is _MISSING or v is None:
        raise ProfileError(f"{_at(where)}missing field {key!r}")
    return v


def _at(where: str) -> str:
    return f"{where}: " if where else ""


def _hex(d: Mapping[str, Any], key: str, default: str | None = None, where: str = "",
         length: int | tuple[int, int] | None = None, secret: bool = False) -> bytes:
    """Field ``key`` as hex bytes; ``length`` is an exact byte count or a (min, max) range;
    ``secret``: a key or track data, whose value no message repeats."""
    v = _field(d, key, _MISSING if default is None else default, where)
    try:
        out = bytes.fromhex(v)
    except (TypeError, ValueError):
        shown = "" if secret else f": {v!r}"
        raise ProfileError(f"{_at(where)}field {key!r} is not hex{shown}") from None
    if length is not None:
        lo, hi = (length, length) if isinstance(length, int) else length
        if not lo <= len(out) <= hi:
            want = f"{lo}" if lo == hi else f"{lo}-{hi}"
            raise ProfileError(f"{_at(where)}field {key!r} is {len(out)} bytes, expected {want}")
    return out


def _hex_byte(d: Mapping[str, Any], key: str, default: str, where: str) -> int:
    return _hex(d, key, default, where, length=1)[0]


def _int(d: Mapping[str, Any], key: str, default: Any, where: str, lo: int, hi: int) -> int:
    v = _field(d, key, default, where)
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ProfileError(f"{_at(where)}field {key!r} is not an integer: {v!r}")
    try:
        n = int(v)
    except ValueError:
        raise ProfileError(f"{_at(where)}field {key!r} is not an integer: {v!r}") from None
    if not lo <= n <= hi:
        raise ProfileError(f"{_at(where)}field {key!r} is {n}, outside {lo}-{hi}")
    return n


def _digits(d: Mapping[str, Any], key: str, default: Any, where: str, lo: int, hi: int) -> str:
    v = _field(d, key, default, where)
    if not isinstance(v, str) or not v.isascii() or not v.isdigit() or not lo <= len(v) <= hi:
        want = f"{lo}" if lo == hi else f"{lo}-{hi}"
        raise ProfileError(f"{_at(where)}field {key!r} is not {want} decimal digits: {v!r}")
    return v


def _object(d: Mapping[str, Any], key: str, default: Any, where: str) -> Mapping[str, Any]:
    v = _field(d, key, default, where)
    if not isinstance(v, Mapping):
        raise ProfileError(f"{_at(where)}field {key!r} is not a JSON object: {v!r}")
    return v


def _list(d: Mapping[str, Any], key: str, where: str) -> list[Any]:
    v = _field(d, key, _MISSING, where)
    if not isinstance(v, list):
        raise ProfileError(f"{_at(where)}field {key!r} is not a list: {v!r}")
    return v


def _tag(text: Any, where: str) -> int:
    try:
        tag = int(text, 16)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: {text!r} is not a hex tag") from None
    if tag <= 0:
        raise ProfileError(f"{where}: {text!r} is not a tag")
    return tag


@dataclass(frozen=True)
class Record:
    sfi: int
    record: int
    data: bytes  # the whole record as served, template 70 included
    dynamic: tuple[int, ...] = ()  # tags the card fills in per transaction (e.g. 9F69)


@dataclass(frozen=True)
class CardKeys:
    """ICC master keys (derived from the issuer master keys at perso, Book 2 A1.4); kept out
    of reprs."""

    ac: bytes = field(repr=False)
    smi: bytes = field(repr=False)
    smc: bytes = field(repr=False)


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


def _text(d: Mapping[str, Any], key: str, default: str, where: str) -> str:
    v = _field(d, key, default, where)
    if not isinstance(v, str):
        raise ProfileError(f"{_at(where)}field {key!r} is not a string: {v!r}")
    return v


def _bool(d: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    v = _field(d, key, default, where)
    if not isinstance(v, bool):
        raise ProfileError(f"{_at(where)}field {key!r} is not true/false: {v!r}")
    return v


def _record(r: Any, where: str) -> Record:
    dynamic = _field(r, "dynamic", [], where)
    if not isinstance(dynamic, list):
        raise ProfileError(f"{where}: field 'dynamic' is not a list: {dynamic!r}")
    return Record(
        sfi=_int(r, "sfi", _MISSING, where, 1, 30),
        record=_int(r, "record", _MISSING, where, 1, 0xFF),
        data=_hex(r, "data", where=where),
        dynamic=tuple(_tag(t, f"{where}: dynamic") for t in dynamic),
    )


_TOKEN_FIELDS = ("mpan", "span", "span_expiry", "token_expiry", "device_id", "device_type",
                 "token_requestor_id", "par")


def _token(t: Any) -> TokenInfo:
    where = "profile: token"
    if not isinstance(t, Mapping):
        raise ProfileError(f"{where} is not a JSON object: {t!r}")
    unknown = sorted(set(t) - set(_TOKEN_FIELDS))
    if unknown:
        raise ProfileError(f"{where}: unknown field {unknown[0]!r}")
    values = {k: _field(t, k, _MISSING, where) for k in _TOKEN_FIELDS}
    for k, v in values.items():
        if not isinstance(v, str):
            raise ProfileError(f"{where}: field {k!r} is not a string: {v!r}")
    _digits(t, "mpan", _MISSING, where, 12, 19)
    _digits(t, "span", _MISSING, where, 12, 19)
    try:
        values["device_type"] = DeviceType.parse(values["device_type"])
    except ValueError as exc:
        raise ProfileError(f"{where}: field 'device_type': {exc}") from None
    return TokenInfo(**values)


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
    records: tuple[Record, ...] = field(repr=False)  # PAN, track 2, name: kept out of reprs
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
    track2: bytes = field(repr=False)
    #: may hold the first limited-use key batch: kept out of reprs
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def record(self, sfi: int, number: int) -> Record | None:
        return next((r for r in self.records if r.sfi == sfi and r.record == number), None)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApplicationProfile:
        """Raises :class:`ProfileError` naming the application and the field at fault."""
        if not isinstance(d, Mapping):
            raise ProfileError(f"application is not a JSON object: {d!r}")
        aid = d.get("aid")
        w = f"application {aid if isinstance(aid, str) else '?'}"
        keys = _object(d, "keys", _MISSING, w)
        risk = _object(d, "risk", {}, w)
        capk = _object(d, "capk", _MISSING, w)
        get_data = _object(d, "get_data", {}, w)
        extra = _object(d, "extra", {}, w)
        pdol, cdol1, cdol2, ddol = (_hex(d, k, "", w) for k in ("pdol", "cdol1", "cdol2", "ddol"))
        for name, dol in (("pdol", pdol), ("cdol1", cdol1), ("cdol2", cdol2), ("ddol", ddol)):
            try:
                parse_dol(dol)
            except TlvError as exc:
                raise ProfileError(f"{w}: field {name!r} is not a DOL ({exc})") from None
        afl = _hex(d, "afl", where=w)
        try:
            parse_afl(afl)
        except AflError as exc:
            raise ProfileError(f"{w}: field 'afl': {exc}") from None
        icc_rsa = d.get("icc_rsa")
        if icc_rsa is not None:
            if not isinstance(icc_rsa, Mapping):
                raise ProfileError(f"{w}: field 'icc_rsa' is not a JSON object: {icc_rsa!r}")
            try:
                icc_rsa = RsaKey.from_dict(icc_rsa)
            except KeyError as exc:
                raise ProfileError(f"{w}: icc_rsa: missing field {exc}") from None
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise ProfileError(f"{w}: icc_rsa: not an RSA key ({exc})") from None
        return cls(
            aid=_hex(d, "aid", where=w, length=(5, 16)),
            label=_text(d, "label", "", w),
            kernel_id=_int(d, "kernel_id", 7, w, 0, 0xFF),
            priority=_int(d, "priority", 1, w, 0, 0x0F),
            fci=_hex(d, "fci", where=w),
            pdol=pdol,
            aip=_hex(d, "aip", where=w, length=2),
            afl=afl,
            records=tuple(
                _record(r, f"{w}: records[{i}]") for i, r in enumerate(_list(d, "records", w))
            ),
            cdol1=cdol1,
            cdol2=cdol2,
            ddol=ddol,
            cvn=_int(d, "cvn", 1, w, 0, 0xFF),
            dki=_hex_byte(d, "dki", "01", w),
            ctq=_hex(d, "ctq", where=w, length=2),
            fdda_version=_hex_byte(d, "fdda_version", "01", w),
            risk=CardRisk(
                offline_amount_limit=_int(risk, "offline_amount_limit", 0, f"{w}: risk",
                                          0, 10**12 - 1),
                consecutive_offline_limit=_int(risk, "consecutive_offline_limit", 0,
                                               f"{w}: risk", 0, 0xFF),
                allow_offline=_bool(risk, "allow_offline", True, f"{w}: risk"),
            ),
            get_data={
                _tag(k, f"{w}: get_data"): _hex(get_data, k, where=f"{w}: get_data")
                for k in get_data
            },
            keys=CardKeys(*(_hex(keys, k, where=f"{w}: keys", length=16, secret=True)
                            for k in ("ac", "smi", "smc"))),
            icc_rsa=icc_rsa,
            capk_rid=_hex(capk, "rid", where=f"{w}: capk", length=5),
            capk_index=_hex_byte(capk, "index", "00", f"{w}: capk"),
            track2=_hex(d, "track2", where=w, secret=True),
            extra=dict(extra),
        )

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
    """The device card's token data (docs/domain.md): MPAN standing for the SPAN."""

    mpan: str
    span: str
    span_expiry: str
    token_expiry: str
    device_id: str
    device_type: DeviceType
    token_requestor_id: str
    par: str

    def __repr__(self) -> str:
        return masked_repr(self, ("mpan", "span"))

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


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

    def __repr__(self) -> str:
        return masked_repr(self, ("pan",))

    @property
    def application(self) -> ApplicationProfile:
        return self.applications[0]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CardProfile:
        """Raises :class:`ProfileError` saying which field is missing or malformed."""
        if not isinstance(d, Mapping):
            raise ProfileError(f"profile is not a JSON object: {type(d).__name__}")
        if d.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"not an emvtap card profile (format {d.get('format')!r}, "
                               f"expected {PROFILE_FORMAT!r})")
        apps = tuple(ApplicationProfile.from_dict(a) for a in _list(d, "applications", "profile"))
        if not apps:
            raise ProfileError("profile has no applications")
        seed = d.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ProfileError(f"profile: field 'seed' is not an integer: {seed!r}")
        token = d.get("token")
        return cls(
            pan=_digits(d, "pan", _MISSING, "profile", 12, 19),
            psn=_digits(d, "psn", "00", "profile", 2, 2),
            expiry=_digits(d, "expiry", _MISSING, "profile", 6, 6),
            effective=_digits(d, "effective", "000101", "profile", 6, 6),
            ppse_fci=_hex(_object(d, "ppse", _MISSING, "profile"), "fci", where="profile: ppse"),
            applications=apps,
            token=_token(token) if token else None,
            seed=seed,
        )

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
        """Read a profile file; ``OSError`` if it cannot be read, else :class:`ProfileError`
        for anything that is not a valid profile."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: not JSON ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write the profile at mode 0600: it holds the card's keys."""
        write_private_text(path, self.to_json())
