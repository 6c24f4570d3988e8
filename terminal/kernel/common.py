"""Kernel procedures shared by every path: GET PROCESSING OPTIONS, reading the application data,
and the data checks (EMV 4.4 Book 3, 10.1-10.2; Contactless Books C-3 and C-7)."""

from __future__ import annotations

from emvtap.apdu import SW, CommandApdu
from emvtap.dol import AflError, build_dol_data, parse_afl, parse_dol
from emvtap.tlv import Tlv, TlvError, decode, find
from terminal.context import TransactionContext

__all__ = ["KernelStop", "initiate_application_processing", "read_application_data"]


class KernelStop(Exception):
    """The kernel ends the transaction here with ``outcome`` and a human ``reason``."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def initiate_application_processing(
    ctx: TransactionContext, pdol: bytes, ttq: bytes
) -> list[Tlv]:
    """Book 3, 10.1: GET PROCESSING OPTIONS with the PDOL data (command template 83).

    Returns the response objects (Format 1 ``80`` is converted to AIP/AFL objects).
    Conditions of use not satisfied (6985) ends the application, as C-7 and C-3 require.
    """
    values = ctx.terminal_data() | {0x9F66: ttq}
    data = build_dol_data(pdol, values) if pdol else b""
    ctx.pdol_values = {e.tag: values[e.tag] for e in parse_dol(pdol) if e.tag in values}
    cmd = CommandApdu(0x80, 0xA8, 0x00, 0x00, Tlv.primitive(0x83, data).encode(), 0)
    resp = ctx.exchange(cmd, "GET PROCESSING OPTIONS")
    if resp.sw == SW.CONDITIONS_NOT_SATISFIED:
        raise KernelStop("END APPLICATION", "card refused GPO: conditions of use not satisfied "
                                            "(6985)")
    if resp.sw != SW.OK:
        raise KernelStop("END APPLICATION", f"GPO answered {resp.sw:04X}")
    try:
        objs = decode(resp.data)
    except TlvError as exc:
        raise KernelStop("END APPLICATION", f"GPO response is not BER-TLV: {exc}") from exc
    if len(objs) != 1 or objs[0].tag not in (0x77, 0x80):
        raise KernelStop("END APPLICATION", "GPO response is neither Format 1 (80) nor "
                                            "Format 2 (77)")
    top = objs[0]
    if top.tag == 0x80:
        if len(top.value) < 2 or (len(top.value) - 2) % 4:
            raise KernelStop("END APPLICATION", "GPO Format 1 with a bad length")
        objs = [Tlv.primitive(0x82, top.value[:2]), Tlv.primitive(0x94, top.value[2:])]
    else:
        objs = list(top.children or ())
    ctx.card[0x9F66] = ttq
    ctx.learn(objs)
    for tag, what in ((0x82, "AIP"), (0x94, "AFL")):
        if find(objs, tag) is None:
            raise KernelStop("END APPLICATION", f"ICC data missing: {what} ({tag:X}) not in GPO")
    return objs


def read_application_data(ctx: TransactionContext) -> None:
    """Book 3, 10.2: READ RECORD for every record the AFL names; keep the records in the
    static data for ODA; a record that is not a 70 template ends the transaction."""
    try:
        afl = parse_afl(ctx.card[0x94])
    except AflError as exc:
        raise KernelStop("END APPLICATION", f"AFL is malformed: {exc}") from exc
    for entry in afl:
        for rec in entry.records():
            cmd = CommandApdu(0x00, 0xB2, rec, (entry.sfi << 3) | 0x04, b"", 0)
            resp = ctx.exchange(cmd, f"READ RECORD SFI {entry.sfi} record {rec}")
            if resp.sw != SW.OK:
                raise KernelStop("END APPLICATION",
                                 f"READ RECORD SFI {entry.sfi} record {rec} answered "
                                 f"{resp.sw:04X}")
            try:
                objs = decode(resp.data)
            except TlvError as exc:
                raise KernelStop("END APPLICATION",
                                 f"record SFI {entry.sfi}/{rec} is not BER-TLV: {exc}") from exc
            if entry.sfi <= 10 and (len(objs) != 1 or objs[0].tag != 0x70):
                raise KernelStop("END APPLICATION",
                                 f"record SFI {entry.sfi}/{rec} is not a 70 template")
            ctx.records[(entry.sfi, rec)] = resp.data
            ctx.learn(objs)
