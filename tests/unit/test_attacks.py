"""The lying card: attack definitions, the mutators, the attack layer around process(apdu),
the catalogue, attack files and ``emvtap card run --attack``."""

from __future__ import annotations

import collections
import json
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from emvtap.apdu import CommandApdu, ResponseApdu
from emvtap.perso import PPSE_NAME, generate_profile
from emvtap.tlv import decode, find, find_all
from hce_card.attacks import (
    AttackCard,
    AttackError,
    CardLeftField,
    attacks_by_id,
    catalogue,
    load_attack_file,
    resolve,
)
from hce_card.attacks.model import FAMILIES, attack_from_dict
from hce_card.card import HceCard
from hce_card.state import StateStore

PROFILE = generate_profile(7)
AID = PROFILE.applications[0].aid
PDOL_DATA = bytes.fromhex("36000000" "000000001000" "000000000000" "0156" "0000000000" "0156"
                          "251201" "00" "11223344")


def _attack(*mutations: dict, expected: object = "not approved offline") -> object:
    return attack_from_dict({"id": "t", "family": "shadowing", "expected": expected,
                             "mutations": list(mutations)})


def _card(*mutations: dict, **kw: object) -> AttackCard:
    card = HceCard(PROFILE, StateStore(), random_bytes=lambda n: bytes(range(n)))
    return AttackCard(card, [_attack(*mutations)], **kw)


def _select(card: AttackCard, name: bytes) -> ResponseApdu:
    return ResponseApdu.decode(card.process(CommandApdu(0, 0xA4, 4, 0, name, 0).encode()))


def _gpo(card: AttackCard) -> ResponseApdu:
    _select(card, AID)
    data = bytes([0x83, len(PDOL_DATA)]) + PDOL_DATA
    return ResponseApdu.decode(card.process(CommandApdu(0x80, 0xA8, 0, 0, data, 0).encode()))


# --- the catalogue ------------------------------------------------------------------------


def test_the_catalogue_has_at_least_30_attacks_over_the_four_families() -> None:
    attacks = catalogue()
    families = collections.Counter(a.family for a in attacks)
    assert len(attacks) >= 30
    assert set(families) == set(FAMILIES)
    assert len({a.id for a in attacks}) == len(attacks)


def test_every_attack_names_its_source_its_kernel_rule_and_an_expected_verdict() -> None:
    for a in catalogue():
        assert a.source and a.description and a.title, a.id
        assert a.kernel_rule, a.id
        assert a.expected.outcomes, a.id
        assert "APPROVED" not in a.expected.outcomes, a.id  # every lie must not pay


def test_the_catalogue_covers_the_attacks_the_literature_names() -> None:
    ids = set(attacks_by_id())
    assert {"visa-limit-bypass", "brand-mixup-aid", "track2-pan-mismatch", "atc-repeat",
            "atc-rollback", "cda-unsigned-gen-ac", "expired-issuer-certificate",
            "revoked-issuer-certificate", "wrong-capk-index", "loop-61xx", "loop-6cxx",
            "wtx-storm", "slow-gpo", "removal-during-gen-ac"} <= ids


def test_resolve_refuses_an_unknown_attack_by_name() -> None:
    with pytest.raises(AttackError, match=r"unknown attack.*no-such-attack"):
        resolve("visa-limit-bypass,no-such-attack")


@pytest.mark.parametrize(("entry", "message"), [
    ({"id": "x", "expected": "DECLINED", "mutations": [{"op": "explode"}]}, "unknown op"),
    ({"id": "x", "expected": "DECLINED", "mutations": [{"op": "set", "path": "77"}]},
     r"missing \['value'\]"),
    ({"id": "x", "expected": "DECLINED", "mutations": [{"op": "sw", "sw": "9"}]}, "sw"),
    ({"id": "x", "expected": "MAYBE", "mutations": [{"op": "sw", "sw": "6985"}]},
     "expected outcomes"),
    ({"id": "x", "expected": {"outcomes": "DECLINED", "tvr": ["NO_SUCH_BIT"]},
      "mutations": [{"op": "sw", "sw": "6985"}]}, "unknown TVR"),
    ({"id": "x", "expected": "DECLINED",
      "mutations": [{"op": "set", "target": "nowhere", "path": "77", "value": "00"}]},
     "unknown target"),
    ({"id": "x", "expected": "DECLINED", "mutations": [{"op": "set", "path": "7G",
                                                        "value": "00"}]}, "bad path"),
    ({"id": "x", "expected": "DECLINED", "mutations": []}, "non-empty"),
])
def test_a_bad_attack_definition_is_refused_with_what_is_wrong(entry: dict, message: str
                                                               ) -> None:
    with pytest.raises(AttackError, match=message):
        attack_from_dict(entry)


# --- the mutators, through the attack layer -------------------------------------------------


def test_add_appends_a_second_copy_of_a_tag_to_the_gpo_template() -> None:
    resp = _gpo(_card({"op": "add", "target": "gpo", "path": "77", "tag": "5F25",
                       "value": "200101"}))
    assert [t.value for t in find_all(decode(resp.data), 0x5F25)] == [bytes.fromhex("200101")]
    assert decode(resp.data)[0].children[-1].tag == 0x5F25


def test_bits_sets_and_clears_ctq_bits() -> None:
    honest = _gpo(_card({"op": "sw", "target": "get_data", "sw": "6A88"}))
    lying = _gpo(_card({"op": "bits", "target": "gpo", "path": "77/9F6C", "set": "0080",
                        "clear": "2000"}))
    before = find(decode(honest.data), 0x9F6C).value
    after = find(decode(lying.data), 0x9F6C).value
    assert after == bytes([before[0] & ~0x20 & 0xFF, before[1] | 0x80])


def test_set_pan_changes_the_pan_in_track_2_and_keeps_the_rest() -> None:
    resp = _gpo(_card({"op": "set_pan", "target": "gpo", "path": "77/57",
                       "pan": "6200000000000001"}))
    t2 = find(decode(resp.data), 0x57).value.hex().upper()
    assert t2.startswith("6200000000000001D")
    assert t2.split("D", 1)[1] == PROFILE.applications[0].track2.hex().upper().split("D", 1)[1]


def test_flip_changes_exactly_one_bit_of_the_signature() -> None:
    plain = _gpo(_card({"op": "sw", "target": "get_data", "sw": "6A88"}))
    flipped = _gpo(_card({"op": "flip", "target": "gpo", "path": "77/9F4B", "index": 10}))
    a, b = find(decode(plain.data), 0x9F4B).value, find(decode(flipped.data), 0x9F4B).value
    assert len(a) == len(b)
    assert [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y] == [10]
    assert a[10] ^ b[10] == 0x01


def test_length_delta_makes_the_long_form_template_length_one_too_long() -> None:
    honest = _gpo(_card({"op": "sw", "target": "get_data", "sw": "6A88"}))
    resp = _gpo(_card({"op": "length_delta", "target": "gpo", "delta": 1}))
    assert honest.data[1] == 0x81 and resp.data[1] == 0x81
    assert resp.data[2] == honest.data[2] + 1
    with pytest.raises(ValueError):
        decode(resp.data)


def test_sw_replaces_the_answer_with_a_status_word() -> None:
    resp = _gpo(_card({"op": "sw", "target": "gpo", "sw": "6985"}))
    assert (resp.data, resp.sw) == (b"", 0x6985)


def test_occurrence_picks_the_nth_matching_command_of_a_tap() -> None:
    card = _card({"op": "sw", "target": "select", "sw": "6A82", "occurrence": 2})
    card.reset()
    assert _select(card, AID).sw == 0x9000
    assert _select(card, AID).sw == 0x6A82
    assert _select(card, AID).sw == 0x9000


def test_loop61_answers_every_get_response_with_61xx_again() -> None:
    card = _card({"op": "loop61", "target": "gpo", "chunk": 16})
    assert _gpo(card).sw == 0x6110
    for _ in range(3):
        again = card.process(bytes.fromhex("00C0000010"))
        assert again[-2:] == b"\x61\x10" and len(again) == 18


def test_remove_card_without_a_link_raises_card_left_field() -> None:
    card = _card({"op": "remove_card", "target": "gpo"})
    with pytest.raises(CardLeftField):
        _gpo(card)


def test_remove_card_on_a_link_calls_its_removal() -> None:
    left: list[bool] = []
    card = _card({"op": "remove_card", "target": "gpo"}, leave_field=lambda: left.append(True))
    _gpo(card)
    assert left == [True]


def test_delay_waits_before_answering() -> None:
    waited: list[float] = []
    card = _card({"op": "delay", "target": "gpo", "seconds": 12}, sleep=waited.append)
    assert _gpo(card).sw == 0x9000
    assert waited == [12.0]


def test_atc_rewind_makes_the_card_spend_the_same_atc_again() -> None:
    card = _card({"op": "atc_rewind", "target": "gpo", "by": 1})
    first = find(decode(_gpo(card).data), 0x9F36).value
    card.reset()
    second = find(decode(_gpo(card).data), 0x9F36).value
    assert first == second


def test_serve_aid_as_lists_and_selects_the_application_under_another_aid() -> None:
    shown = "A0000000031010"
    card = _card({"op": "serve_aid_as", "aid": AID.hex(), "as": shown})
    ppse = _select(card, PPSE_NAME)
    assert [t.value.hex().upper() for t in find_all(decode(ppse.data), 0x4F)] == [shown]
    fci = _select(card, bytes.fromhex(shown))
    assert fci.sw == 0x9000
    assert find(decode(fci.data), 0x84).value.hex().upper() == shown


def test_resign_issuer_certificate_serves_a_certificate_with_the_new_expiry() -> None:
    from datetime import date

    from emvtap.capk import CapkStore
    from emvtap.oda import recover_issuer_public_key

    card = _card({"op": "resign_issuer_certificate", "expiry": "0120"})
    _select(card, AID)
    rec = ResponseApdu.decode(card.process(CommandApdu(0, 0xB2, 1, (2 << 3) | 4, b"",
                                                       0).encode()))
    objs = decode(rec.data)
    app = PROFILE.applications[0]
    capk = CapkStore.default().get(app.capk_rid, app.capk_index)
    issuer = recover_issuer_public_key(capk, find(objs, 0x90).value,
                                       find(objs, 0x92).value if find(objs, 0x92) else b"",
                                       find(objs, 0x9F32).value, PROFILE.pan, date(2019, 1, 1))
    assert issuer.expiry_mmyy == bytes.fromhex("0120")


# --- attack files -------------------------------------------------------------------------


def test_an_attack_file_names_catalogue_attacks_and_defines_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(textwrap.dedent("""\
        format: emvtap-attacks/1
        attacks:
          - visa-limit-bypass
          - id: my-expiry-shadow
            family: shadowing
            expected: {outcomes: not approved offline}
            mutations:
              - {op: add, target: gpo, path: "77", tag: 5F24, value: "491231"}
        """))
    attacks = load_attack_file(path)
    assert [a.id for a in attacks] == ["visa-limit-bypass", "my-expiry-shadow"]
    assert "APPROVED" not in attacks[1].expected.outcomes


def test_an_attack_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("format: something/9\nattacks: [visa-limit-bypass]\n")
    with pytest.raises(AttackError, match="format"):
        load_attack_file(path)


# --- emvtap card run --attack ---------------------------------------------------------------


def _run(args: list[str]) -> object:
    from lab.cli import cli

    return CliRunner().invoke(cli, args)


def test_card_run_refuses_an_unknown_attack_with_a_usage_error(tmp_path: Path) -> None:
    profile = tmp_path / "card.json"
    PROFILE.save(profile)
    result = _run(["card", "run", "--profile", str(profile), "--link", "loopback",
                   "--attack", "no-such-attack"])
    assert result.exit_code == 2
    assert "unknown attack(s) no-such-attack" in result.output
    assert "Traceback" not in result.output


def test_card_run_refuses_a_broken_attack_file(tmp_path: Path) -> None:
    profile = tmp_path / "card.json"
    PROFILE.save(profile)
    bad = tmp_path / "bad.yaml"
    bad.write_text("attacks:\n  - {id: x, expected: DECLINED, mutations: [{op: nope}]}\n")
    result = _run(["card", "run", "--profile", str(profile), "--link", "loopback",
                   "--attack-file", str(bad)])
    assert result.exit_code == 2
    assert "unknown op 'nope'" in result.output


# --- the bench's reports ----------------------------------------------------------------------


def test_the_bench_reports_json_with_a_format_and_junit_with_one_case_per_row() -> None:
    from lab.attack_bench import BENCH_FORMAT, open_terminal, run_bench, to_json, to_junit

    attacks = resolve("wrong-sdad-fdda,loop-6cxx")
    rows = run_bench(open_terminal("loopback"), attacks)
    doc = to_json(rows, "loopback")
    assert doc["format"] == BENCH_FORMAT
    assert [r["id"] for r in doc["rows"]] == ["baseline-quickpass", "wrong-sdad-fdda",
                                              "loop-6cxx"]
    assert doc["summary"] == {"total": 2, "passed": 2, "failed": 0, "not_run": 0,
                              "baseline_ok": True}
    fdda = doc["rows"][1]
    assert fdda["observed"]["apdus"], "the APDU exchange is in the report"
    assert "DDA failed" in fdda["observed"]["tvr_bits"]
    json.dumps(doc)
    suite = ET.fromstring(to_junit(rows, "loopback"))
    assert suite.get("tests") == "3" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == [r["id"] for r in doc["rows"]]


def test_the_bench_marks_a_wrong_verdict_as_a_failure() -> None:
    from lab.attack_bench import LoopbackTerminal, run_one

    lie = attack_from_dict({"id": "expects-too-much", "family": "crypto",
                            "expected": {"outcomes": ["DECLINED"], "tvr": ["CDA_FAILED"]},
                            "mutations": [{"op": "sw", "target": "get_data:9F13",
                                           "sw": "6A88"}]})
    row = run_one(LoopbackTerminal(), lie)
    assert row.status == "fail"
    assert "outcome APPROVED" in row.why


def test_the_bench_does_not_run_an_attack_on_a_link_it_needs_and_says_so() -> None:
    from lab.attack_bench import LoopbackTerminal, run_one

    row = run_one(LoopbackTerminal(), attacks_by_id()["wtx-storm"])
    assert row.status == "not run"
    assert "needs a nfc link" in row.why


def test_an_internal_error_is_never_the_expected_verdict() -> None:
    from hce_card.attacks.model import Verdict
    from lab.attack_bench import Observation, judge

    ok, why = judge(Verdict(("END APPLICATION",)),
                    Observation("END APPLICATION", reason="internal error: ApduError: x"))
    assert not ok and "internal error" in why


def test_prompt_mode_takes_the_outcome_the_person_reports() -> None:
    from lab.attack_bench import _ask_outcome

    answers = iter(["maybe", "try a", "d"])
    assert _ask_outcome(lambda _: next(answers)) == "DECLINED"


def test_docs_list_every_attack_of_the_catalogue_with_its_verdict() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "attacks.md").read_text()
    for a in catalogue():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{a.id}` |")), "")
        assert row, a.id
        assert a.expected.text in row and f"`{a.kernel_rule}`" in row, a.id


@pytest.mark.parametrize("attack_id", ["malformed-tlv-length", "truncated-record",
                                       "track2-pan-mismatch", "oversized-gpo"])
def test_the_bench_report_holds_no_clear_pan_even_when_the_answer_is_not_tlv(
        attack_id: str) -> None:
    from lab.attack_bench import LoopbackTerminal, run_one, scenario_profile

    attack = attacks_by_id()[attack_id]
    row = run_one(LoopbackTerminal(), attack)
    text = json.dumps(row.to_dict())
    profile = scenario_profile(attack.scenario.card)
    assert profile.pan[:6] in text or row.observed.apdus  # the exchange is there
    assert profile.pan not in text
    for m in attack.mutations:
        if "pan" in m.args:
            assert m.args["pan"] not in text.replace(f'"pan": "{m.args["pan"]}"', "")


def test_every_operation_an_attack_may_name_has_a_mutator() -> None:
    from hce_card.attacks import mutators
    from hce_card.attacks.model import OPS

    implemented = set(mutators.APPLY) | set(mutators.PREPARE) | set(mutators.IMAGE_OPS)
    assert set(OPS) == implemented
