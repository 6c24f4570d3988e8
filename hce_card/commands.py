"""The commands a payment application answers, as a table (EMV 4.4 Book 3, 6.5; Book 3, 10.10
for the issuer script commands): INS → name, the classes it accepts, its handler - and GET
PROCESSING OPTIONS, which starts the quick path (:mod:`hce_card.quick_path`) or the full path
(:mod:`hce_card.full_path`).

This module sits above the application and its handler modules: it imports them, they never
import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.bits import TTQ, is_set
from emvtap.dol import split_dol_data
from emvtap.tlv import TlvError, decode
from hce_card import full_path, quick_path, scripts
from hce_card.application import PaymentApplication
from hce_card.session import Phase

__all__ = ["COMMANDS", "Command", "get_processing_options", "handle"]


class Command(NamedTuple):
    name: str
    classes: frozenset[int]
    handler: Callable[[PaymentApplication, CommandApdu], ResponseApdu]


def _sw(sw: int) -> ResponseApdu:
    return ResponseApdu(b"", sw)


def handle(app: PaymentApplication, cmd: CommandApdu) -> ResponseApdu:
    """One command to the selected application: an INS not in :data:`COMMANDS` answers 6D00,
    a class the command does not accept 6E00; the handler answers the rest."""
    command = COMMANDS.get(cmd.ins)
    if command is None:
        return _sw(SW.INS_NOT_SUPPORTED)
    if cmd.cla not in command.classes:
        return _sw(SW.CLA_NOT_SUPPORTED)
    return command.handler(app, cmd)


def get_processing_options(app: PaymentApplication, cmd: CommandApdu) -> ResponseApdu:
    """Book 3 6.5.8, C-3/C-7: check the PDOL data, start the transaction; the quick path
    decides the cryptogram here, the full path answers AIP and AFL."""
    if (cmd.p1, cmd.p2) != (0, 0):
        return _sw(SW.INCORRECT_P1P2)
    if app.blocked:  # Book 3 6.5.8.4: a blocked application refuses GPO, whatever data
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    if not cmd.data:
        return _sw(SW.WRONG_LENGTH)
    try:
        objs = decode(cmd.data)
    except TlvError:
        return _sw(SW.WRONG_DATA)
    if len(objs) != 1 or objs[0].tag != 0x83 or objs[0].encode() != cmd.data:
        return _sw(SW.WRONG_DATA)
    try:
        values = split_dol_data(app.app.pdol, objs[0].value)
    except ValueError:
        return _sw(SW.WRONG_LENGTH)
    if app.session.phase is not Phase.SELECTED:
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    if app.state.atc >= 0xFFFF:
        app.store.update_app(app.aid, application_blocked=True)
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    app.session.pdol_data = objs[0].value
    app.session.values = dict(values)
    app.session.before = app.state
    ttq = values.get(0x9F66, b"")
    if app.quick_path_supported and is_set(ttq, TTQ.QPBOC_SUPPORTED):
        return quick_path.quick_path(app, values, ttq)
    return full_path.full_path_gpo(app)


_P = frozenset

#: INS → command (Book 3 6.5; Book 3 10.10 for the script commands).
COMMANDS: dict[int, Command] = {
    0xA8: Command("GET PROCESSING OPTIONS", _P({0x80}), get_processing_options),
    0xB2: Command("READ RECORD", _P({0x00}), PaymentApplication.read_record),
    0xCA: Command("GET DATA", _P({0x80}), PaymentApplication.get_data),
    0x88: Command("INTERNAL AUTHENTICATE", _P({0x00}), full_path.internal_authenticate),
    0xAE: Command("GENERATE AC", _P({0x80}), full_path.generate_ac),
    0x82: Command("EXTERNAL AUTHENTICATE", _P({0x00}), full_path.external_authenticate),
    **{ins: Command(name, _P(classes), scripts.issuer_script_command)
       for ins, (name, classes) in scripts.SCRIPT_COMMAND_NAMES.items()},
}
