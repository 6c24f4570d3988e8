"""The personalisation of the Java Card applets is built twice, by lab/applet/perso.py
(what ``emvtap card perso-applet`` sends) and by the bridge's PersoCommands (what
``--profile`` installs): the same profile must give the same APDUs, byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emvtap.profile import CardProfile
from lab.applet.cli import AppletError, ensure_bridge_jar
from lab.applet.perso import (
    applet_install_parameters,
    dgi,
    payment_perso_apdus,
    perso_apdus,
    store_data,
)

EMVTAP = [sys.executable, "-m", "lab.cli"]


@pytest.fixture(scope="module")
def jar() -> Path:
    try:
        return ensure_bridge_jar()
    except AppletError as exc:
        pytest.fail(f"the applet bridge jar could not be built: {exc}")


@pytest.fixture(scope="module", params=["handset-se", "hce"])
def profile_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("perso") / f"card-{request.param}.json"
    subprocess.run([*EMVTAP, "perso", "--seed", "23", "--out", str(out),
                    "--device-type", request.param], check=True, capture_output=True, timeout=60)
    return out


def test_python_and_java_perso_apdus_are_identical(jar: Path, profile_path: Path) -> None:
    java = subprocess.run(["java", "-jar", str(jar), "--dump-perso", str(profile_path)],
                          check=True, capture_output=True, text=True, timeout=60)
    python = [a.hex().upper() for a in perso_apdus(CardProfile.load(profile_path))]
    assert java.stdout.split() == python


def test_store_data_blocks_carry_at_most_255_bytes_and_flag_the_last(profile_path: Path) -> None:
    profile = CardProfile.load(profile_path)
    apdus = payment_perso_apdus(profile.application, profile.psn)
    assert apdus[0][:5] == bytes.fromhex("00A4040008")
    blocks = apdus[1:]
    assert len(blocks) > 1, "a real profile spans several STORE DATA blocks"
    for n, apdu in enumerate(blocks):
        assert apdu[:2] == b"\x80\xe2"
        assert apdu[2] == (0x88 if n == len(blocks) - 1 else 0x08)
        assert apdu[3] == n
        assert apdu[4] == len(apdu) - 5 <= 255
    stream = b"".join(a[5:] for a in blocks)
    assert stream.startswith(dgi(0x9102, profile.application.fci))


def test_long_dgi_uses_the_three_byte_length_and_empty_stream_is_one_last_block() -> None:
    assert dgi(0x0101, bytes(300))[:5] == bytes.fromhex("0101FF012C")
    assert dgi(0x0101, bytes(254))[:3] == bytes.fromhex("0101FE")
    assert store_data(b"") == [bytes.fromhex("80E2880000")]


def test_install_parameters_give_the_icc_key_length(profile_path: Path) -> None:
    app = CardProfile.load(profile_path).application
    assert app.icc_rsa is not None
    n_ic = app.icc_rsa.modulus_len
    assert applet_install_parameters(app) == b"\xc9\x02" + n_ic.to_bytes(2, "big")
