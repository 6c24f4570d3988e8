"""The attack catalogue: one data-table entry per attack - what the card lies about, the
public work it comes from, the kernel rule a correct terminal applies and the verdict it
reaches.

Scenario defaults: a UnionPay QuickPass card (kernel 7, qPBOC with fDDA), amount 10.00
(below the default floor limit of 100.00 and CVM limit of 300.00), the shipped terminal
configuration. Without the attack every scenario card is approved offline (the bench checks
that first: its ``baseline`` rows). Verdict shorthand ``not approved offline``: DECLINED, ONLINE
REQUEST, END APPLICATION, TRY AGAIN or TRY ANOTHER INTERFACE.

Sources, cited by short name in the entries:

- Galloway & Yunusov 2019: L.-A. Galloway, T. Yunusov, "First contact: new vulnerabilities in
  contactless payments", Black Hat Europe 2019 (Visa limit bypass by CTQ/TTQ rewriting; ATC
  checks of 31 cards).
- Basin et al. 2021a: D. Basin, R. Sasse, J. Toro-Pozo, "The EMV Standard: Break, Fix,
  Verify", IEEE S&P 2021 (Visa PIN bypass, unauthenticated CTQ, offline data not bound).
- Basin et al. 2021b: D. Basin, R. Sasse, J. Toro-Pozo, "Card Brand Mixup Attack: Bypassing
  the PIN in non-Visa Cards by Using Them for Visa Transactions", USENIX Security 2021.
- Murdoch et al. 2010: S. J. Murdoch, S. Drimer, R. Anderson, M. Bond, "Chip and PIN is
  Broken", IEEE S&P 2010 (unauthenticated CVM result).
- Roland & Langer 2013: M. Roland, J. Langer, "Cloning Credit Cards: A combined pre-play and
  downgrade attack on EMV Contactless", USENIX WOOT 2013 (track 2 / MSD data, ATC pre-play).
- Bond et al. 2014: M. Bond, O. Choudary, S. J. Murdoch, S. Skorobogatov, R. Anderson,
  "Chip and Skim: cloning EMV cards with the pre-play attack", IEEE S&P 2014 (ATC/UN reuse).
- Emms et al. 2014: M. Emms, B. Arief, L. Freitas, J. Hannon, A. van Moorsel, "Harvesting
  high value foreign currency transactions from EMV contactless credit cards without the
  PIN", ACM CCS 2014.
- EMV Book 3 10.2 (data objects that appear twice), Book 2 5.3/6.3/6.4/6.6 (certificates,
  SDAD, CDA), Book 1 9.3.1 and ISO/IEC 7816-4 5.1.3 (61xx/6Cxx), ISO/IEC 14443-4 7.3 (S(WTX)),
  Contactless Book A 6.2/8 and Book B 3.3-3.5 (outcomes, Entry Point), Books C-2, C-3, C-7.
"""

from __future__ import annotations

from typing import Any

from hce_card.attacks.model import Attack, AttackError, attack_from_dict

__all__ = ["CATALOGUE", "KERNEL_RULES", "attacks_by_id", "catalogue", "resolve"]

#: The kernel rules the attacks check, by short name.
KERNEL_RULES: dict[str, str] = {
    "redundancy": "a data object met twice in the transaction (FCI, GPO, records, GET DATA) "
                  "ends it; an offline decision rests only on signed values (Book 3 10.2; "
                  "C-2 / C-3 / C-7 redundant data)",
    "pan-binding": "the PAN in track 2 (57) equals 5A and the PAN in the ICC certificate "
                   "(Book 2 6.4 step 8; C-3 / C-7 track 2 consistency)",
    "atc-binding": "the ATC (9F36) equals the one the signed dynamic data carries (Book 2 "
                   "6.5.2, IDN; C-7 fDDA)",
    "signed-ctq": "the CTQ the kernel acts on is the one in the signed Card Authentication "
                  "Related Data 9F69 (C-3 / C-7 fDDA version 01)",
    "dol-length": "a DOL entry the kernel cannot build is a card error with a defined outcome "
                  "(Book 3 5.4)",
    "oda": "offline data authentication (Book 2 5.3, 6.3-6.6) with its TVR bit",
    "cvm": "contactless CVM from the CTQ against the TTQ (C-3 / C-7)",
    "entry-point": "Entry Point combination selection and kernel activation (Book B 3.3-3.4)",
    "transport": "a card that stops answering properly ends the tap with TRY AGAIN or END "
                 "APPLICATION, never an internal error (Book A 6.4, Book 1 9.3.1)",
    "risk": "terminal and card risk management above the floor limit (Book 3 10.6)",
}

_NAO = "not approved offline"
_QP = {"card": "quickpass"}
_VISA = {"card": "visa"}
_MC = {"card": "mastercard"}

#: The catalogue as data. Paths are hex tags from the top of the answer (hce_card.attacks.
#: mutators); ``expected`` lists the outcomes of a correct terminal and the TVR bits it sets.
CATALOGUE: list[dict[str, Any]] = [
    # --- CTQ / TTQ and CVM manipulation ------------------------------------------------------
    {"id": "visa-limit-bypass", "family": "cvm",
     "title": "2019 Visa limit bypass: CDCVM claimed in an unsigned CTQ",
     "description": "Above the CVM limit the card claims consumer-device CVM performed "
                    "(CTQ byte 2 b8) and drops online PIN from the CTQ it answers, while the "
                    "signed 9F69 keeps the true CTQ. A terminal that believes 9F6C skips the "
                    "cardholder verification.",
     "source": "Galloway & Yunusov 2019; Basin et al. 2021a",
     "kernel_rule": "signed-ctq",
     "scenario": {"card": "visa", "amount": 35000, "terminal": {}},
     "mutations": [{"op": "bits", "target": "gpo", "path": "77/9F6C", "set": "0080",
                    "clear": "8000"}],
     "expected": {"outcomes": ["ONLINE REQUEST", "DECLINED", "END APPLICATION"],
                  "text": "never approved offline: the CVM claim (CVR in the IAD, under the "
                          "cryptogram) goes to the issuer"}},
    {"id": "ctq-cdcvm-offline", "family": "cvm",
     "title": "CDCVM claimed on an offline approval the signed CTQ does not carry",
     "description": "Below the CVM limit the card answers a TC and sets CDCVM performed in 9F6C "
                    "only; 9F69 (signed) says otherwise.",
     "source": "Basin et al. 2021a", "kernel_rule": "signed-ctq",
     "scenario": _QP,
     "mutations": [{"op": "bits", "target": "gpo", "path": "77/9F6C", "set": "0080"}],
     "expected": {"outcomes": _NAO}},
    {"id": "ctq-drop-online-pin", "family": "cvm",
     "title": "Online PIN requirement removed from the CTQ",
     "description": "Above the CVM limit the card asks for online PIN; the answer's 9F6C has "
                    "byte 1 b8 cleared so the terminal asks for no CVM.",
     "source": "Galloway & Yunusov 2019", "kernel_rule": "cvm",
     "scenario": {"card": "quickpass", "amount": 35000},
     "mutations": [{"op": "bits", "target": "gpo", "path": "77/9F6C", "clear": "C000"}],
     "expected": {"outcomes": ["DECLINED", "ONLINE REQUEST", "END APPLICATION"],
                  "tvr": ["CARDHOLDER_VERIFICATION_FAILED"],
                  "text": "CVM required but none the reader supports: declined, TVR "
                          "cardholder verification not successful"}},
    {"id": "cvm-list-no-cvm", "family": "cvm",
     "title": "CVM list rewritten to 'No CVM required, always' in an unsigned record copy",
     "description": "The M/Chip card's CVM list (8E) is signed in record SFI 1; the card "
                    "appends a second 8E saying 'no CVM always' (1F00) to the GPO answer.",
     "source": "Murdoch et al. 2010; Basin et al. 2021a", "kernel_rule": "redundancy",
     "scenario": {"card": "mastercard", "amount": 35000},
     "mutations": [{"op": "add", "target": "gpo", "path": "77", "tag": "8E",
                    "value": "00000000000000001F00"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"],
                  "text": "redundant 8E ends the transaction"}},
    {"id": "aip-drop-cda", "family": "cvm",
     "title": "AIP downgraded: CDA and DDA support removed (unsigned GPO AIP)",
     "description": "The M/Chip card's GPO answer claims no offline data authentication "
                    "(AIP byte 1 b6, b1 cleared) so the terminal skips ODA. The AIP is part of "
                    "the signed static data, which the ICC certificate's hash covers.",
     "source": "Basin et al. 2021a", "kernel_rule": "oda",
     "scenario": _MC,
     "mutations": [{"op": "bits", "target": "gpo", "path": "77/82", "clear": "6100"}],
     "expected": {"outcomes": _NAO,
                  "text": "no offline approval without ODA (TVR ODA not performed)"}},
    {"id": "aip-drop-cvm", "family": "cvm",
     "title": "AIP says cardholder verification not supported",
     "description": "AIP byte 1 b5 cleared in the GPO answer on the full path above the CVM "
                    "limit: a terminal that trusts it skips the CVM list.",
     "source": "Basin et al. 2021a", "kernel_rule": "oda",
     "scenario": {"card": "mastercard", "amount": 35000},
     "mutations": [{"op": "bits", "target": "gpo", "path": "77/82", "clear": "1000"}],
     "expected": {"outcomes": _NAO}},
    {"id": "auc-flip", "family": "cvm",
     "title": "Application Usage Control widened in an unsigned copy",
     "description": "A second 9F07 'valid everywhere' (FFC0) is appended to the GPO answer "
                    "while the signed record has FF00.",
     "source": "EMV Book 3 10.2", "kernel_rule": "redundancy",
     "scenario": _MC,
     "mutations": [{"op": "add", "target": "gpo", "path": "77", "tag": "9F07",
                    "value": "FFC0"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    # --- data shadowing ---------------------------------------------------------------------
    {"id": "shadow-effective-date-fci", "family": "shadowing",
     "title": "Unsigned 5F25 in the FCI overrides the signed effective date",
     "description": "Tapped on 2025-10-01, the signed record's 5F25 251101 is not yet "
                    "effective; the card appends 5F25 200101 to the SELECT AID FCI.",
     "source": "EMV Book 3 10.2; Basin et al. 2021a", "kernel_rule": "redundancy",
     "scenario": {"card": "mastercard", "date": "2025-10-01"},
     "mutations": [{"op": "add", "target": "select", "path": "6F/A5", "tag": "5F25",
                    "value": "200101"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "shadow-effective-date-gpo", "family": "shadowing",
     "title": "Unsigned 5F25 in the GPO answer",
     "description": "5F25 200101 appended to the GPO response template 77.",
     "source": "EMV Book 3 10.2", "kernel_rule": "redundancy",
     "scenario": {"card": "mastercard", "date": "2025-10-01"},
     "mutations": [{"op": "add", "target": "gpo", "path": "77", "tag": "5F25",
                    "value": "200101"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "shadow-expiry-gpo", "family": "shadowing",
     "title": "Unsigned 5F24 (expiry) in the GPO answer",
     "description": "Tapped on 2031-01-15, the signed 5F24 301231 has passed; the card "
                    "appends 5F24 491231 to template 77.",
     "source": "EMV Book 3 10.2", "kernel_rule": "redundancy",
     "scenario": {"card": "mastercard", "date": "2031-01-15"},
     "mutations": [{"op": "add", "target": "gpo", "path": "77", "tag": "5F24",
                    "value": "491231"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "dup-tag-fci", "family": "shadowing",
     "title": "The same tag twice in the FCI proprietary template",
     "description": "A second 9F38 (PDOL) in A5 of the SELECT AID answer.",
     "source": "EMV Book 3 10.2; Book 1 11.3.4", "kernel_rule": "redundancy",
     "scenario": _QP,
     "mutations": [{"op": "add", "target": "select", "path": "6F/A5", "tag": "9F38",
                    "value": "9F6604"}],
     "expected": {"outcomes": ["END APPLICATION", "SELECT NEXT", "DECLINED"]}},
    {"id": "dup-tag-gpo-quick", "family": "shadowing",
     "title": "Duplicated TLV in the quick-path GPO answer",
     "description": "The qPBOC GPO template carries 9F27 twice (TC then AAC).",
     "source": "EMV Book 3 10.2; C-7 redundant data", "kernel_rule": "redundancy",
     "scenario": _QP,
     "mutations": [{"op": "add", "target": "gpo", "path": "77", "tag": "9F27",
                    "value": "00"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "dup-tag-records", "family": "shadowing",
     "title": "A record repeats a tag of another record",
     "description": "SFI 3 record 1 (9F69) also carries a 5F24 491231.",
     "source": "EMV Book 3 10.2", "kernel_rule": "redundancy",
     "scenario": _QP,
     "mutations": [{"op": "add", "target": "record:3.1", "path": "70", "tag": "5F24",
                    "value": "491231"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "dup-tag-get-data", "family": "shadowing",
     "title": "GET DATA answers a tag already read, with another value",
     "description": "The card names velocity limits (9F14/9F23) in its GPO answer, so the "
                    "terminal reads its counters with GET DATA (Book 3 10.6.3), and answers "
                    "every GET DATA with a 5F24 (expiry) as well.",
     "source": "EMV Book 3 10.2 and 6.5.7", "kernel_rule": "redundancy",
     "scenario": _MC,
     "mutations": [{"op": "add", "target": "gpo", "tag": "9F14", "value": "00"},
                   {"op": "add", "target": "gpo", "tag": "9F23", "value": "FF"},
                   {"op": "add", "target": "get_data", "tag": "5F24", "value": "491231"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "track2-pan-mismatch", "family": "shadowing",
     "title": "Track 2 carries another PAN than 5A and the ICC certificate",
     "description": "The qVSDC GPO answer's 57 (unsigned) holds another card number.",
     "source": "Roland & Langer 2013; Basin et al. 2021a", "kernel_rule": "pan-binding",
     "scenario": _VISA,
     "mutations": [{"op": "set_pan", "target": "gpo", "path": "77/57",
                    "pan": "4761739001010010"}],
     "expected": {"outcomes": _NAO}},
    {"id": "pan-5a-mismatch", "family": "shadowing",
     "title": "5A in the records differs from the PAN of the ICC certificate",
     "description": "The record's 5A is changed (record is signed static data: the SDA hash "
                    "in the ICC certificate no longer matches, and 5A no longer matches the "
                    "PAN of track 2: the PAN binding ends the application before ODA).",
     "source": "EMV Book 2 6.4; Book 3 Annex A", "kernel_rule": "pan-binding",
     "scenario": _QP,
     "mutations": [{"op": "set_pan", "target": "record:1.1", "path": "70/5A",
                    "pan": "6200000000000001"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "brand-mixup-kernel-id", "family": "shadowing",
     "title": "Brand mix-up: a Mastercard AID announced for kernel 3 (Visa)",
     "description": "The PPSE entry of the Mastercard application asks for kernel 03; no "
                    "combination of that AID with kernel 3 exists.",
     "source": "Basin et al. 2021b", "kernel_rule": "entry-point",
     "scenario": _MC,
     "mutations": [{"op": "set", "target": "ppse", "path": "6F/A5/BF0C/61/9F2A",
                    "value": "03"}],
     "expected": {"outcomes": ["END APPLICATION", "TRY ANOTHER INTERFACE"],
                  "text": "no candidate: END APPLICATION"}},
    {"id": "brand-mixup-aid", "family": "shadowing",
     "title": "Brand mix-up: a Mastercard application presented under the Visa AID",
     "description": "PPSE and FCI show A0000000031010 but the application behind it is the "
                    "M/Chip one, its certificates under the Mastercard RID.",
     "source": "Basin et al. 2021b", "kernel_rule": "oda",
     "scenario": _MC,
     "mutations": [{"op": "serve_aid_as", "target": "any", "aid": "A0000000041010",
                    "as": "A0000000031010"},
                   {"op": "set", "target": "ppse", "path": "6F/A5/BF0C/61/9F2A",
                    "value": "03"}],
     "expected": {"outcomes": _NAO}},
    {"id": "pdol-long-form-length", "family": "shadowing",
     "title": "PDOL entry with a long-form length (9A 83)",
     "description": "The FCI's PDOL asks for 9A with length byte 83 (a long-form length read "
                    "as 131 bytes), making the GPO data exceed 255 bytes.",
     "source": "EMV Book 3 5.4", "kernel_rule": "dol-length",
     "scenario": _QP,
     "mutations": [{"op": "set", "target": "select", "path": "6F/A5/9F38",
                    "value": "9F66049F02069F03069F1A0295055F2A029A839C019F3704"}],
     "expected": {"outcomes": ["END APPLICATION", "TRY AGAIN", "SELECT NEXT"]}},
    # --- cryptographic ----------------------------------------------------------------------
    {"id": "atc-shadow", "family": "crypto",
     "title": "ATC in 9F36 differs from the one the signed dynamic data carries",
     "description": "The fDDA signature holds ATC n (IDN); the GPO answer reports n - 1 "
                    "(the ATC of the previous transaction).",
     "source": "Galloway & Yunusov 2019; Bond et al. 2014", "kernel_rule": "atc-binding",
     "scenario": _QP,
     "mutations": [{"op": "set", "target": "gpo", "path": "77/9F36", "value": "0000"}],
     "expected": {"outcomes": _NAO}},
    {"id": "atc-repeat", "family": "crypto",
     "title": "ATC repeated: the card spends the previous transaction's ATC again",
     "description": "Second tap with the ATC of the first (the cryptogram is consistent with "
                    "it). Above the floor limit a correct terminal goes online so the issuer "
                    "sees the repeated ATC; it never approves offline.",
     "source": "Galloway & Yunusov 2019", "kernel_rule": "risk",
     "scenario": {"card": "quickpass", "amount": 15000, "taps": 2},
     "mutations": [{"op": "atc_rewind", "target": "gpo", "by": 1, "occurrence": 0}],
     "expected": {"outcomes": ["ONLINE REQUEST"],
                  "text": "online request (the issuer must refuse the repeated ATC)"}},
    {"id": "atc-rollback", "family": "crypto",
     "title": "ATC rolled back below the last one",
     "description": "Second tap with an ATC lower than the first's; above the floor limit.",
     "source": "Galloway & Yunusov 2019", "kernel_rule": "risk",
     "scenario": {"card": "quickpass", "amount": 15000, "taps": 2},
     "mutations": [{"op": "atc_rewind", "target": "gpo", "by": 2}],
     "expected": {"outcomes": ["ONLINE REQUEST"]}},
    {"id": "wrong-sdad-fdda", "family": "crypto",
     "title": "fDDA signature (9F4B) corrupted",
     "description": "One bit of the signed dynamic application data flipped.",
     "source": "EMV Book 2 6.5.2", "kernel_rule": "oda",
     "scenario": _QP,
     "mutations": [{"op": "flip", "target": "gpo", "path": "77/9F4B", "index": 10}],
     "expected": {"outcomes": _NAO, "tvr": ["DDA_FAILED"]}},
    {"id": "wrong-sdad-cda", "family": "crypto",
     "title": "CDA signature in the GENERATE AC answer corrupted",
     "description": "One bit of 9F4B in the first GENERATE AC answer flipped.",
     "source": "EMV Book 2 6.6.2", "kernel_rule": "oda",
     "scenario": _MC,
     "mutations": [{"op": "flip", "target": "gen_ac1", "path": "77/9F4B", "index": 10}],
     "expected": {"outcomes": _NAO, "tvr": ["CDA_FAILED"]}},
    {"id": "cda-unsigned-gen-ac", "family": "crypto",
     "title": "CDA requested, GENERATE AC answered without a signature",
     "description": "The answer carries a plain 9F26 and no 9F4B.",
     "source": "EMV Book 2 6.6.2; Basin et al. 2021a", "kernel_rule": "oda",
     "scenario": _MC,
     "mutations": [{"op": "remove", "target": "gen_ac1", "path": "77/9F4B"},
                   {"op": "add", "target": "gen_ac1", "path": "77", "tag": "9F26",
                    "value": "1122334455667788"}],
     "expected": {"outcomes": _NAO, "tvr": ["CDA_FAILED"]}},
    {"id": "expired-issuer-certificate", "family": "crypto",
     "title": "Issuer public key certificate expired",
     "description": "The issuer certificate re-signed by the (test) CA with expiry 01/20.",
     "source": "EMV Book 2 5.3 step 9", "kernel_rule": "oda",
     "scenario": _QP,
     "mutations": [{"op": "resign_issuer_certificate", "target": "any", "expiry": "0120"}],
     "expected": {"outcomes": _NAO, "tvr": ["DDA_FAILED"]}},
    {"id": "revoked-issuer-certificate", "family": "crypto",
     "title": "Issuer certificate on the CA revocation list",
     "description": "The issuer certificate re-signed with serial EEEEEE, which the terminal's "
                    "revocation list names for the test CA of the RID.",
     "source": "EMV Book 2 5.3 step 10", "kernel_rule": "oda",
     "scenario": {"card": "quickpass", "terminal": {"revocation_list": [
         {"rid": "A000000333", "index": "E1", "serial": "EEEEEE"}]}},
     "mutations": [{"op": "resign_issuer_certificate", "target": "any", "serial": "EEEEEE"}],
     "expected": {"outcomes": _NAO, "tvr": ["DDA_FAILED"]}},
    {"id": "wrong-capk-index", "family": "crypto",
     "title": "CA public key index (8F) the terminal does not hold",
     "description": "Record SFI 2 record 1 names CA key index 99.",
     "source": "EMV Book 2 5.2", "kernel_rule": "oda",
     "scenario": _QP,
     "mutations": [{"op": "set", "target": "record:2.1", "path": "70/8F", "value": "99"}],
     "expected": {"outcomes": _NAO, "tvr": ["DDA_FAILED"]}},
    {"id": "icc-certificate-corrupt", "family": "crypto",
     "title": "ICC public key certificate corrupted",
     "description": "One bit of 9F46 flipped.",
     "source": "EMV Book 2 6.4", "kernel_rule": "oda",
     "scenario": _VISA,
     "mutations": [{"op": "flip", "target": "record:2.2", "path": "70/9F46", "index": 20}],
     "expected": {"outcomes": _NAO, "tvr": ["DDA_FAILED"]}},
    {"id": "card-auth-data-shadow", "family": "crypto",
     "title": "9F69 changed after signing (unpredictable number replaced)",
     "description": "The Card Authentication Related Data the card serves differs from the one "
                    "it signed.",
     "source": "EMV Contactless Book C-7 fDDA", "kernel_rule": "oda",
     "scenario": _QP,
     "mutations": [{"op": "flip", "target": "record:3.1", "path": "70/9F69", "index": 2}],
     "expected": {"outcomes": _NAO, "tvr": ["DDA_FAILED"]}},
    # --- transport ----------------------------------------------------------------------
    {"id": "oversized-gpo", "family": "transport",
     "title": "GPO answer longer than 256 bytes",
     "description": "A 300-byte proprietary object inside template 77.",
     "source": "ISO/IEC 7816-4 5.1; EMV Book 1 9.3", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "oversize", "target": "gpo", "bytes": 300}],
     "expected": {"outcomes": ["END APPLICATION", "TRY AGAIN", "DECLINED"]}},
    {"id": "malformed-tlv-length", "family": "transport",
     "title": "GPO template length one too long",
     "description": "The 77 length says one byte more than there is.",
     "source": "EMV Book 3 Annex B", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "length_delta", "target": "gpo", "delta": 1}],
     "expected": {"outcomes": ["END APPLICATION", "TRY AGAIN"]}},
    {"id": "truncated-record", "family": "transport",
     "title": "Record cut short",
     "description": "The last 3 bytes of SFI 1 record 1 are missing.",
     "source": "EMV Book 3 Annex B", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "truncate", "target": "record:1.1", "bytes": 3}],
     "expected": {"outcomes": ["END APPLICATION", "TRY AGAIN"]}},
    {"id": "loop-61xx", "family": "transport",
     "title": "61xx loop: GET RESPONSE never ends",
     "description": "The GPO is answered 6110 and every GET RESPONSE after it again 6110.",
     "source": "ISO/IEC 7816-4 5.1.3; EMV Book 1 9.3.1", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "loop61", "target": "gpo"}],
     "expected": {"outcomes": ["TRY AGAIN", "END APPLICATION"]}},
    {"id": "loop-6cxx", "family": "transport",
     "title": "6Cxx loop: wrong Le for ever",
     "description": "Every command from the GPO on is answered 6C10.",
     "source": "ISO/IEC 7816-4 5.1.3; EMV Book 1 9.3.1", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "loop6c", "target": "gpo"}],
     "expected": {"outcomes": ["END APPLICATION", "TRY AGAIN"]}},
    {"id": "wrong-sw-gpo", "family": "transport",
     "title": "GPO answered 6985 (conditions of use not satisfied)",
     "description": "Contactless Book C-3/C-7: a GPO 6985 means 'try another interface' "
                    "(or select next), never an approval.",
     "source": "EMV Contactless Book C-7 / C-3 GPO response", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "sw", "target": "gpo", "sw": "6985"}],
     "expected": {"outcomes": ["TRY ANOTHER INTERFACE", "END APPLICATION", "SELECT NEXT"]}},
    {"id": "wrong-sw-record", "family": "transport",
     "title": "READ RECORD answered 6A83 for a record in the AFL",
     "description": "A record the AFL lists is 'not found'.",
     "source": "EMV Book 3 10.2", "kernel_rule": "transport",
     "scenario": _QP,
     "mutations": [{"op": "sw", "target": "record:2.2", "sw": "6A83"}],
     "expected": {"outcomes": ["END APPLICATION", "DECLINED"]}},
    {"id": "wrong-sw-gen-ac", "family": "transport",
     "title": "GENERATE AC answered 6F00",
     "description": "The card fails the first GENERATE AC.",
     "source": "EMV Book 3 6.5.5", "kernel_rule": "transport",
     "scenario": _MC,
     "mutations": [{"op": "sw", "target": "gen_ac1", "sw": "6F00"}],
     "expected": {"outcomes": ["END APPLICATION", "TRY AGAIN", "DECLINED"]}},
    {"id": "removal-during-gen-ac", "family": "transport",
     "title": "Card leaves the field during GENERATE AC",
     "description": "The first GENERATE AC is never answered.",
     "source": "EMV Contactless Book A 6.4 / Book B 3.5", "kernel_rule": "transport",
     "scenario": _MC,
     "mutations": [{"op": "remove_card", "target": "gen_ac1"}],
     "expected": {"outcomes": ["TRY AGAIN"], "text": "TRY AGAIN: present card again"}},
    {"id": "slow-gpo", "family": "transport",
     "title": "GPO answer slower than the terminal's timeout",
     "description": "The card answers the GPO after 12 s, beyond the reader's 10 s APDU "
                    "timeout, without asking for more time (on PC/SC, where no S(WTX) exists; "
                    "on ISO-DEP links a slow card asks with S(WTX): see wtx-storm).",
     "source": "ISO/IEC 14443-4 7.3; EMV Contactless Book A 6.4", "kernel_rule": "transport",
     "scenario": {"card": "quickpass", "links": ["vpcd"]},
     "mutations": [{"op": "delay", "target": "gpo", "seconds": 12}],
     "expected": {"outcomes": ["TRY AGAIN", "END APPLICATION"]}},
    {"id": "wtx-storm", "family": "transport",
     "title": "S(WTX) storm: the card asks for more time, again and again",
     "description": "The GPO takes 40 s; the card's ISO-DEP layer sends an S(WTX) every "
                    "frame waiting time meanwhile. A terminal must bound the whole exchange.",
     "source": "ISO/IEC 14443-4 7.3; Galloway & Yunusov 2019 (relay timing)",
     "kernel_rule": "transport",
     "scenario": {"card": "quickpass", "links": ["nfc"]},
     "mutations": [{"op": "delay", "target": "gpo", "seconds": 40}],
     "expected": {"outcomes": ["TRY AGAIN", "END APPLICATION"]}},
]


def catalogue() -> list[Attack]:
    """Every attack of the catalogue, parsed (raises AttackError on a bad entry)."""
    return [attack_from_dict(entry, "catalogue") for entry in CATALOGUE]


def attacks_by_id() -> dict[str, Attack]:
    return {a.id: a for a in catalogue()}


def resolve(names: str | list[str]) -> list[Attack]:
    """``"a,b"`` or ["a", "b"] → those attacks; ``all`` → the whole catalogue."""
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    known = attacks_by_id()
    if wanted == ["all"]:
        return list(known.values())
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise AttackError(f"unknown attack(s) {', '.join(unknown)}; `emvtap bench attack "
                          "--list` shows the catalogue")
    return [known[n] for n in wanted]
