"""``emvtap switch serve`` as its own process: enroll a profile, serve on an ephemeral port,
authorise a tap over TCP, stop."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from emvtap.endpoints import parse_host_port
from emvtap.iso8583 import exchange
from switch.cli import switch_group
from switch.testing import SimCard, make_profile

SERVE = "from switch.cli import switch_group; switch_group()"


def test_serve_process_authorises_an_enrolled_card(tmp_path):
    profile = make_profile(11)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(profile))
    db = tmp_path / "switch.db"
    assert CliRunner().invoke(switch_group, ["enroll", "--db", str(db), str(path)]).exit_code == 0

    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--db", str(db), "--port", "0", "--admin-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("switch: serving 127.0.0.1:"), line
        port = parse_host_port(line.removeprefix("switch: serving ").split(",")[0]).port
        card = SimCard.from_profile(profile)
        assert exchange("127.0.0.1", port, card.request(100))["39"] == "00"
        assert exchange("127.0.0.1", port, card.request(100, tamper=True))["39"] == "05"
    finally:
        proc.terminate()
        proc.wait(10)
