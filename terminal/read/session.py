"""The APDUs of a card read, each with what it was for and the card's status word in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emvtap.apdu import ApduError, CommandApdu, ResponseApdu, status_meaning
from emvtap.masking import redact_tlv_bytes
from terminal.transport.base import Transport

__all__ = ["ReadSession", "sw_json"]


def sw_json(sw: int) -> dict[str, str]:
    return {"sw": f"{sw:04X}", "meaning": status_meaning(sw)}


@dataclass
class ReadSession:
    """Sends commands on a connected transport (GET RESPONSE / 6Cxx handled by it) and logs
    them; ``clear`` keeps cardholder data unmasked in the log."""

    transport: Transport
    clear: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)

    def send(self, command: CommandApdu | bytes, label: str) -> ResponseApdu:
        raw = command.encode() if isinstance(command, CommandApdu) else bytes(command)
        answer = self.transport.transmit(raw)
        try:
            response = ResponseApdu.decode(answer)
        except ApduError:  # the transport guarantees a status word; keep it total anyway
            response = ResponseApdu(b"", 0x6F00)
        data = response.data if self.clear else redact_tlv_bytes(response.data)
        self.log.append({"label": label, "c": raw.hex().upper(), "r": data.hex().upper(),
                         **sw_json(response.sw)})
        return response
