"""Command and response APDUs (ISO/IEC 7816-4; EMV 4.4 Book 1, 9 and Book 3, 6) and the
status words with their meanings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SW", "ApduError", "CommandApdu", "ResponseApdu", "status_meaning"]


class ApduError(ValueError):
    """Bytes that are not a well-formed command APDU."""


@dataclass(frozen=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le; 0 means 256

    def encode(self) -> bytes:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ApduError(f"{name.upper()} {getattr(self, name)} is not one byte")
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            if len(self.data) > 255:
                raise ApduError("short APDUs carry at most 255 data bytes")
            out += bytes([len(self.data)]) + bytes(self.data)
        if self.le is not None:
            if not 0 <= self.le <= 256:
                raise ApduError(f"Le {self.le} is outside 0-256 (short APDUs; 0 and 256 are 00)")
            out += bytes([self.le & 0xFF])
        return out

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Short APDU cases 1-4 (extended length is not used by EMV contactless)."""
        if len(raw) < 4:
            raise ApduError(f"command APDU of {len(raw)} bytes (at least 4 needed)")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, b"", body[0])
        lc = body[0]
        if lc == 0:
            raise ApduError("Lc of 0 (extended length is not supported)")
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1:]))
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1])
        raise ApduError(f"Lc says {lc} data bytes, the body has {len(body) - 1}")

    @property
    def header(self) -> bytes:
        return bytes([self.cla, self.ins, self.p1, self.p2])


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw: int

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ApduError(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def ok(self) -> bool:
        return self.sw == SW.OK

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def __str__(self) -> str:
        return f"{self.data.hex().upper()} {self.sw:04X} ({status_meaning(self.sw)})"


class SW:
    """Status words an EMV card answers with, by name."""

    OK = 0x9000
    SELECTED_FILE_INVALIDATED = 0x6283  # application blocked, answered to SELECT
    STATE_UNCHANGED_WARNING = 0x6300
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    REFERENCED_DATA_INVALIDATED = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    SM_DATA_INCORRECT = 0x6988
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


_MEANINGS: dict[int, str] = {
    0x9000: "success",
    0x6283: "selected file invalidated (application blocked)",
    0x6300: "authentication failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed",
    0x6987: "secure messaging data objects missing",
    0x6988: "secure messaging data objects incorrect",
    0x6A80: "incorrect data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory",
    0x6A86: "incorrect P1/P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong P1/P2",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def status_meaning(sw: int) -> str:
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:  # SW2 00: 256 bytes (or more)
        return f"{sw2 or 256} response bytes still available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le: resend with Le={sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    return "unknown status"
