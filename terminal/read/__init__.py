"""``emvtap terminal read``: a card dump - every application on the card, read without a
purchase (no GENERATE AC), every data element decoded, the certificate chain checked.

One module per job: :mod:`.session` (the APDUs and their log), :mod:`.directory` (which
applications the card has), :mod:`.application` (what one application holds),
:mod:`.certificates` (the chain under the shipped CA keys), :mod:`.nodes` (decoded TLV as
JSON), :mod:`.report` (the document and its format version), :mod:`.render` (the tree view).
"""

from __future__ import annotations

from .report import FORMAT_NAME, FORMAT_VERSION, CardReport, read_card

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "CardReport", "read_card"]
