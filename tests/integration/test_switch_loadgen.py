"""switch.loadgen: the benchmark's own checks (its DE 39 shortcut agrees with the decoder, and a
tiny run against a real server process approves everything)."""

from __future__ import annotations

import json

from emvtap.iso8583 import decode_message, encode_message
from switch.loadgen import main, response_code_of
from switch.testing import SimCard, make_profile


def test_response_code_shortcut_agrees_with_the_decoder():
    card = SimCard.from_profile(make_profile(1))
    for code, extra in (("00", {"38": "123456"}), ("51", {}), ("30", {"70": "301"})):
        request = card.request(100)
        response = {"t": "0110", **{k: request[k] for k in ("2", "3", "4", "11", "41")}}
        response |= {"39": code, "55": b"\x91\x0a" + bytes(10), **extra}
        raw = encode_message(response)
        assert response_code_of(raw) == decode_message(raw)["39"] == code


def test_small_run_against_a_real_server_approves_everything(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--connections", "2", "--requests", "60", "--rates", "100", "--seconds", "0.3"]
    assert main([*args, "--json", str(out)]) == 0
    runs = json.loads(out.read_text())
    assert [r["run"] for r in runs] == ["closed loop", "offered 100/s"]
    assert all(r["not_approved"] == 0 and r["requests"] > 0 for r in runs)
