"""The simulated PN533 answers the command frames of nfcpy's own driver tests with the
response frames of those tests, byte for byte (tests/data/nfcpy_frames/, with provenance), so
that the simulator cannot drift into agreeing only with our own code. The frames follow the
PN533 user manual (UM0801-03, 6.2 host frames, 8 commands)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from data_files import DATA_DIR

from emvtap.chipsim import hostframe
from emvtap.chipsim.acr122 import Acr122Chip, led_state
from emvtap.chipsim.field import RELEASED, FieldInitiator, FieldTarget, TargetInfo
from emvtap.chipsim.pn53x import Pn53xChip
from emvtap.chipsim.rcs380 import ACK as PORT100_ACK
from emvtap.chipsim.rcs380 import Port100Chip, decode_frame, encode_frame

pytestmark = pytest.mark.timeout(30)

FRAMES = json.loads((DATA_DIR / "nfcpy_frames" / "pn533.json").read_text())
ACR122 = json.loads((DATA_DIR / "nfcpy_frames" / "acr122.json").read_text())
RCS380 = json.loads((DATA_DIR / "nfcpy_frames" / "rcs380.json").read_text())


def unhex(text: str) -> bytes:
    """Fixture hex: spaces ignored; ``{000102..ff}`` is 00..FF, ``{256 zero bytes}`` 256 zeros."""
    text = text.replace("{000102..ff}", bytes(range(256)).hex())
    text = text.replace("{256 zero bytes}", "00" * 256)
    return bytes.fromhex(re.sub(r"\s", "", text))


def exchange(chip: Pn53xChip, command: bytes, timeout_ms: int = 3000) -> bytes:
    """One host command as nfcpy's ``Chipset.command`` does it: write, read the ACK within
    100 ms, read the response frame; the decoded response (TFI, code, data)."""
    chip.write(hostframe.encode(command))
    assert bytes(chip.read(100)) == hostframe.ACK
    return hostframe.decode(chip.read(timeout_ms))


@pytest.mark.parametrize("case", FRAMES["raw_frames"][:3], ids=lambda c: c["name"])
def test_host_frames_are_built_as_the_pn533_manual_and_nfcpy_build_them(case: dict) -> None:
    body = unhex(case["tfi"] + case["code"] + case["params"])
    assert hostframe.encode(body) == unhex(case["frame"])
    assert hostframe.decode(unhex(case["frame"])) == body


def test_ack_nack_and_error_frames_are_nfcpys() -> None:
    raw = {case["name"]: unhex(case["frame"]) for case in FRAMES["raw_frames"]}
    assert raw["ACK"] == hostframe.ACK
    assert raw["NACK"] == hostframe.NACK
    assert raw["error frame"] == hostframe.ERROR_FRAME


def _peer(field: dict[str, Any] | None, chip: Any, stop: threading.Event) -> Any:
    """The other end of the RF field for a case, running in a thread; returns what to close."""
    if field is None:
        return None
    if field["kind"] == "empty":
        chip.field = FieldInitiator("127.0.0.1", _unused_port())
        return None
    if field["kind"] == "target":
        target = FieldTarget("127.0.0.1", 0)
        chip.field = FieldInitiator("127.0.0.1", target.port)
        target.arm(TargetInfo(unhex(field["sens_res"]), unhex(field["sel_res"]),
                              unhex(field["nfcid1"])))

        def answer() -> None:
            session = target.wait_activation(10, stop)
            if session is None:
                return
            for reply in field["answers"]:
                frame = target.receive(10, stop)
                if frame in (None, RELEASED):
                    return
                target.send(unhex(reply))

        threading.Thread(target=answer, daemon=True).start()
        return target
    assert field["kind"] == "initiator"
    target = FieldTarget("127.0.0.1", 0)
    chip.field = target
    reader = FieldInitiator("127.0.0.1", target.port)

    def send() -> None:
        while not stop.is_set() and reader.poll() is None:
            time.sleep(0.01)
        for frame in field["sends"]:
            reader.transceive(unhex(frame), 0.3)

    threading.Thread(target=send, daemon=True).start()
    return reader


def _unused_port() -> int:
    probe = FieldTarget("127.0.0.1", 0)
    port = probe.port
    probe.close()
    return port


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.mark.parametrize("case", FRAMES["cases"], ids=lambda c: c["name"])
def test_the_simulated_pn533_answers_nfcpys_frames(case: dict, stop: threading.Event) -> None:
    spec = case["chip"]
    chip = Pn53xChip("pn533", eeprom=spec.get("eeprom", True))
    for address, value in spec.get("registers", {}).items():
        chip.registers[int(address, 16)] = int(value, 16)
    if "inject" in spec:
        chip.inject(spec["inject"])
    peer = _peer(case["field"], chip, stop)
    try:
        for command, response in case["exchanges"]:
            assert exchange(chip, unhex(command)).hex() == unhex(response).hex(), command
    finally:
        stop.set()
        chip.close()
        if peer is not None:
            peer.close()


def test_a_command_the_chip_does_not_know_gets_the_error_frame() -> None:
    chip = Pn53xChip("pn533")
    chip.write(hostframe.host_frame(0xFE))
    assert bytes(chip.read(100)) == hostframe.ACK
    assert bytes(chip.read(100)) == hostframe.ERROR_FRAME


def test_a_frame_with_a_bad_checksum_gets_a_nack() -> None:
    chip = Pn53xChip("pn533")
    frame = bytearray(hostframe.host_frame(0x02))
    frame[-2] ^= 0xFF
    chip.write(bytes(frame))
    assert bytes(chip.read(100)) == hostframe.NACK


def test_an_ack_from_the_host_cancels_a_waiting_command() -> None:
    """PN533 manual 6.2.1.3: the host aborts the command in progress with an ACK frame; the
    answer of the aborted TgInitAsTarget never comes, the next command's does."""
    target = FieldTarget("127.0.0.1", 0)
    chip = Pn53xChip("pn533", target)
    try:
        listen = next(c for c in FRAMES["cases"] if c["name"].startswith("listen_tta"))
        chip.write(hostframe.encode(unhex(listen["exchanges"][1][0])))
        assert bytes(chip.read(100)) == hostframe.ACK
        with pytest.raises(OSError):
            chip.read(150)
        chip.write(hostframe.ACK)
        assert exchange(chip, bytes.fromhex("D402")) == bytes.fromhex("D50333020707")
    finally:
        chip.close()


def test_the_pn532_answers_registers_without_a_status_byte() -> None:
    """PN532 user manual 7.2.4/7.2.5: ReadRegister answers the values, WriteRegister nothing."""
    chip = Pn53xChip("pn532")
    chip.registers[0x631A] = 0xBB
    assert exchange(chip, bytes.fromhex("D406631A")) == bytes.fromhex("D507BB")
    assert exchange(chip, bytes.fromhex("D408630111")) == bytes.fromhex("D509")
    assert chip.registers[0x6301] == 0x11


@pytest.mark.parametrize("spec, message", [
    ("nfc:sim:pn999", "unknown simulated chip 'pn999'"),
    ("nfc:sim:pn533:127.0.0.1:http", "bad port 'http'"),
    ("nfc:sim", "expected nfc:sim:CHIP"),
])
def test_a_bad_sim_reader_spec_is_a_clear_error(spec: str, message: str) -> None:
    from terminal.transport import open_transport

    with pytest.raises(ValueError, match=re.escape(message)):
        open_transport(spec)


def test_the_sim_path_defaults_to_loopback() -> None:
    from emvtap.chipsim import parse_sim_path

    path = parse_sim_path("sim:pn533")
    assert (path.chip, path.host, path.port) == ("pn533", "127.0.0.1", 54533)


def _rf_chip(chip: Any) -> Any:
    """The chip whose ``field`` the peer is attached to (the ACR122U's is its PN532)."""
    return chip.controller.pn532 if isinstance(chip, Acr122Chip) else chip


@pytest.mark.parametrize("case", ACR122["cases"], ids=lambda c: c["name"])
def test_the_simulated_acr122u_answers_nfcpys_ccid_messages(case: dict,
                                                             stop: threading.Event) -> None:
    chip = Acr122Chip(Pn53xChip("pn532"))
    chip.powered = case.get("powered", False)
    peer = _peer(case["field"], _rf_chip(chip), stop)
    try:
        for command, response in case["exchanges"]:
            chip.write(unhex(command))
            assert bytes(chip.read(3000)).hex() == unhex(response).hex(), command
    finally:
        stop.set()
        chip.close()
        if peer is not None:
            peer.close()


@pytest.mark.parametrize("case", RCS380["cases"], ids=lambda c: c["name"])
def test_the_simulated_rcs380_answers_nfcpys_frames(case: dict, stop: threading.Event) -> None:
    chip = Port100Chip()
    peer = _peer(case["field"], chip, stop)
    try:
        for command, response in case["exchanges"]:
            chip.write(encode_frame(unhex(command)))
            assert bytes(chip.read(100)) == PORT100_ACK
            answer = decode_frame(bytes(chip.read(5000)))
            assert answer is not None
            assert answer.hex() == unhex(response).hex(), command
    finally:
        stop.set()
        chip.close()
        if peer is not None:
            peer.close()


@pytest.mark.parametrize("p2, before, after", [
    (0x0E, 0x01, 0x02),  # green on, red off (nfcpy's default)
    (0x0D, 0x02, 0x01),  # red on, green off (nfcpy's "active")
    (0x0C, 0x03, 0x00),  # both off (nfcpy's close)
    (0x05, 0x02, 0x03),  # red on, green untouched (not in the mask)
    (0x00, 0x03, 0x03),  # nothing masked: nothing changes
])
def test_the_acr122u_led_state_follows_the_api_manuals_mask_and_final_state_bits(
    p2: int, before: int, after: int,
) -> None:
    assert led_state(p2, before) == after


def test_the_acr122u_cannot_be_the_card_emulators_reader() -> None:
    """nfcpy's acr122 driver refuses every listen: the ACR122U's controller does not let its
    PN532 act as a target. The card link says so before opening anything."""
    from hce_card.link import open_link

    with pytest.raises(ValueError, match="the acr122 cannot emulate a card"):
        open_link("nfc:sim:acr122:127.0.0.1:54533", card=object())  # type: ignore[arg-type]
