"""PN53x host frames (PN533 user manual, 6.2 "Host controller communication protocol"; the
PN532 user manual, 6.2, has the same frames): the normal information frame
``00 00 FF LEN LCS TFI PD0..PDn DCS 00``, the extended frame ``00 00 FF FF FF LENM LENL LCS …``
for more than 254 bytes, ACK ``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00`` and the
syntax-error frame ``00 00 FF 01 FF 7F 81 00``.

TFI ``D4`` is host to chip, ``D5`` chip to host; the command code follows, the response code
is the command code + 1."""

from __future__ import annotations

__all__ = [
    "ACK",
    "ERROR_FRAME",
    "NACK",
    "FrameError",
    "chip_frame",
    "decode",
    "encode",
    "host_frame",
]

PREAMBLE_SOF = b"\x00\x00\xff"
ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
#: The chip's answer to a frame it cannot parse (PN533 user manual, 6.2.1.4 "Error frame").
ERROR_FRAME = bytes.fromhex("0000FF01FF7F8100")
TFI_HOST = 0xD4
TFI_CHIP = 0xD5


class FrameError(ValueError):
    """A frame that breaks the host protocol (bad start, length or checksum)."""


def encode(data: bytes) -> bytes:
    """*data* (TFI and payload) in a normal frame, or an extended one above 254 bytes."""
    if len(data) < 256:
        length = bytes([len(data)])
        lcs = bytes([(256 - len(data)) & 0xFF])
        head = PREAMBLE_SOF + length + lcs
    else:
        length = len(data).to_bytes(2, "big")
        lcs = bytes([(256 - sum(length)) & 0xFF])
        head = PREAMBLE_SOF + b"\xff\xff" + length + lcs
    dcs = bytes([(256 - sum(data)) & 0xFF])
    return head + bytes(data) + dcs + b"\x00"


def host_frame(code: int, params: bytes = b"") -> bytes:
    """A host command frame: TFI D4, *code*, *params*."""
    return encode(bytes([TFI_HOST, code]) + bytes(params))


def chip_frame(code: int, params: bytes = b"") -> bytes:
    """A chip response frame: TFI D5, *code* (the command code + 1), *params*."""
    return encode(bytes([TFI_CHIP, code]) + bytes(params))


def decode(frame: bytes) -> bytes:
    """TFI and payload of a normal or extended information frame; :class:`FrameError` for
    anything else (ACK and NACK included: test for them first)."""
    frame = bytes(frame)
    if not frame.startswith(PREAMBLE_SOF):
        raise FrameError(f"no start of frame in {frame[:8].hex()}")
    if frame[3:5] == b"\xff\xff":
        length = int.from_bytes(frame[5:7], "big")
        if (sum(frame[5:8])) & 0xFF:
            raise FrameError("extended frame: length checksum error")
        body = frame[8 : 8 + length]
        dcs_at = 8 + length
    else:
        length = frame[3]
        if (frame[3] + frame[4]) & 0xFF:
            raise FrameError("length checksum error")
        body = frame[5 : 5 + length]
        dcs_at = 5 + length
    if len(body) != length or len(frame) < dcs_at + 1:
        raise FrameError(f"frame shorter than its length {length}")
    if (sum(body) + frame[dcs_at]) & 0xFF:
        raise FrameError("data checksum error")
    return body
