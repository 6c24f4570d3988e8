"""The reader interface every transport implements, and the transport-level APDU rules that
are the terminal's job whatever the reader: GET RESPONSE on ``61xx`` and re-sending with the
right Le on ``6Cxx``.

References:
- ISO/IEC 7816-4:2005, 5.1.3 (status bytes ``61xx`` and ``6Cxx``) and 7.6.1 (GET RESPONSE).
- ISO/IEC 7816-3:2006, 12.2 (the T=0 transport of command cases 2 and 4, from which the
  ``61xx``/``6Cxx`` procedure comes).
- EMV 4.4 Book 1, 9.3.1 (C-APDU/R-APDU transport for T=0: the terminal sends GET RESPONSE
  with CLA ``00`` on ``61xx`` and re-issues the command with ``Le = SW2`` on ``6Cxx``).

Contactless cards speak ISO 14443-4, where no reader does either step for us (pcscd, vpcd,
nfcpy and the ACR122U firmware all pass ``61xx``/``6Cxx`` straight up), so the one
implementation below, :func:`transmit_apdu`, is shared by every transport.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple, Protocol, Self, runtime_checkable

__all__ = [
    "MAX_GET_RESPONSE",
    "MAX_RESPONSE_LENGTH",
    "BaseTransport",
    "CardRemovedError",
    "Exchange",
    "NoCardError",
    "Transport",
    "TransportError",
    "get_response_command",
    "transmit_apdu",
    "with_le",
]

#: How many GET RESPONSE commands one command may need before the card is declared broken.
#: A 64 KiB response in 256-byte chunks needs 256; a card that keeps answering ``61xx`` beyond
#: that is not sending data, it is looping.
MAX_GET_RESPONSE = 256
#: Largest response assembled from GET RESPONSE chunks (an extended-length maximum).
MAX_RESPONSE_LENGTH = 65536


class TransportError(Exception):
    """The reader or the link to it failed (no PC/SC service, reader unplugged, bad response
    framing, a card that loops on ``61xx``). Not the card's status word: those come back as data.
    """


class CardRemovedError(TransportError):
    """The card left the field (or stopped answering) in the middle of a tap.

    EMV Contactless Book A, 6.4 / Book B, 3.5: a communication error after activation is
    reported as the Outcome *Try Again* with the message "present card again".
    """


class NoCardError(TransportError):
    """No card came into the field before the ``connect`` timeout ran out."""


class Exchange(NamedTuple):
    """One command-response pair as it went over the wire, with its round-trip time."""

    command: bytes
    response: bytes
    seconds: float


@runtime_checkable
class Transport(Protocol):
    """A contactless reader as the kernel sees it (docs/contracts.md, "Terminal side")."""

    exchanges: list[Exchange]

    def connect(self, timeout: float | None = None) -> bytes:
        """Wait up to *timeout* seconds (``None``: for ever) for a card; return its ATR/ATS.
        Raises :class:`NoCardError` when none came."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Send a command APDU; return data ‖ SW1 SW2 with ``61xx``/``6Cxx`` already handled."""
        ...

    def disconnect(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def get_response_command(sw2: int) -> bytes:
    """GET RESPONSE for ``61 sw2`` (ISO/IEC 7816-4, 7.6.1; EMV 4.4 Book 1, 9.3.1):
    CLA ``00``, INS ``C0``, P1 P2 ``00 00``, Le = SW2 (``00`` asks for 256 bytes)."""
    return bytes([0x00, 0xC0, 0x00, 0x00, sw2 & 0xFF])


def with_le(command: bytes, le: int) -> bytes:
    """*command* re-issued with ``Le = le`` (ISO/IEC 7816-4, 5.1.3: ``6Cxx`` means "wrong Le
    field; SW2 encodes the exact number of available data bytes").

    Short APDUs only (EMV contactless uses no extended length): case 1 gains an Le, case 2
    has its Le replaced, case 3 gains an Le (becomes case 4), case 4 has its Le replaced.
    """
    if len(command) < 4:
        raise ValueError(f"command APDU of {len(command)} bytes (at least 4 needed)")
    body = command[4:]
    le_byte = bytes([le & 0xFF])
    if not body:  # case 1
        return command + le_byte
    if len(body) == 1:  # case 2
        return command[:4] + le_byte
    lc = body[0]
    if lc and len(body) == 1 + lc:  # case 3
        return command + le_byte
    if lc and len(body) == 2 + lc:  # case 4
        return command[:-1] + le_byte
    raise ValueError(f"not a short command APDU: Lc {lc}, body of {len(body)} bytes")


def transmit_apdu(send: Callable[[bytes], bytes], apdu: bytes) -> bytes:
    """Send *apdu* with the raw one-shot *send*, then do what ISO/IEC 7816-4 leaves to the
    terminal: re-send once with the card's Le on ``6Cxx`` and collect ``61xx`` chunks with GET
    RESPONSE until the card gives a final status (EMV 4.4 Book 1, 9.3.1, cases 2 and 4).

    Returns all data received, concatenated, followed by the last status word.
    Raises :class:`TransportError` if a response is shorter than a status word, or the card
    keeps answering ``61xx`` past :data:`MAX_GET_RESPONSE` commands or
    :data:`MAX_RESPONSE_LENGTH` bytes.
    """
    response = _checked(send(apdu))
    if response[-2] == 0x6C:
        try:
            resend = with_le(apdu, response[-1])
        except ValueError:
            return response  # nothing sensible to re-send: the caller sees 6Cxx
        response = _checked(send(resend))

    data = bytearray()
    for _ in range(MAX_GET_RESPONSE):
        if response[-2] != 0x61:
            data += response
            return bytes(data)
        data += response[:-2]
        if len(data) > MAX_RESPONSE_LENGTH:
            raise TransportError(f"card sent more than {MAX_RESPONSE_LENGTH} bytes over 61xx")
        response = _checked(send(get_response_command(response[-1])))
    raise TransportError(f"card answered 61xx to {MAX_GET_RESPONSE} GET RESPONSE commands")


def _checked(response: bytes) -> bytes:
    if len(response) < 2:
        raise TransportError(f"response of {len(response)} bytes has no status word")
    return response


class BaseTransport(ABC):
    """Shared behaviour of the drivers: GET RESPONSE/6Cxx handling, the timing record, the
    context manager. A driver implements :meth:`connect`, :meth:`_send` (one raw command, one
    raw response) and :meth:`disconnect`."""

    #: The reader spec this transport was opened with (``pcsc:0``, ``loopback:`` …).
    spec: str = ""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    @abstractmethod
    def connect(self, timeout: float | None = None) -> bytes:
        """Wait for a card, activate it and return its ATR (PC/SC) or ATS-derived ATR."""

    @abstractmethod
    def _send(self, apdu: bytes) -> bytes:
        """Exchange one raw command for one raw response. Raises :class:`CardRemovedError`
        when the card is gone, :class:`TransportError` for reader failures."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the card (power off or deselect). Never raises for a card already gone."""

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; the response has ``61xx``/``6Cxx`` already resolved
        (:func:`transmit_apdu`). Every wire exchange is appended to :attr:`exchanges`."""
        return transmit_apdu(self._timed_send, bytes(apdu))

    def _timed_send(self, apdu: bytes) -> bytes:
        start = time.perf_counter()
        response = bytes(self._send(apdu))
        self.exchanges.append(Exchange(apdu, response, time.perf_counter() - start))
        return response

    def close(self) -> None:
        """Disconnect and release the reader itself (PC/SC context, USB device); the transport
        is not used again. Transports that hold such resources extend it."""
        self.disconnect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r}>"
