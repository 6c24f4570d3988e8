"""The repository stands alone: no tracked file (outside .ci/) refers to material that lives
outside it — the team's working notes beside the checkout, an environment variable pointing at
them, or issue numbers. Citations go to docs/ or to the EMV / scheme book and section; test data
is vendored in tests/data/ (tests/data/README.md)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from data_files import DATA_DIR

ROOT = Path(__file__).resolve().parents[2]

#: What a file of the repository must not say, and why. The patterns are assembled from pieces
#: so that this file does not match itself.
_NOTES = "sha" + "red"
FORBIDDEN: dict[str, re.Pattern[str]] = {
    "a path to the notes beside the checkout": re.compile(
        r"\.\./" + _NOTES + r"|\b" + _NOTES + r"/(data|spec|hooks)\b|/work/" + _NOTES),
    "the environment variable that pointed at them": re.compile(r"EMVTAP_" + _NOTES.upper()),
    "the design notes": re.compile(r"\bDES" + r"IGN(\.md)?\b"),
    "the summary of the specs": re.compile(
        r"emv-" + r"digest|\b(the|spec) dig" + r"est\b|dig" + r"est ?§"),
    "the token notes": re.compile(r"\btok" + r"ens\.md\b|\bspec/[\w-]+\.md\b"),
    "an issue number": re.compile(r"\b[Ii]ss" + r"ues? ?#?\d+"),
}

#: The CI's own directory may name the environment it runs in.
EXEMPT_DIRS = (".ci/",)


def violations(path: str, text: str) -> list[str]:
    """``path:line: reason`` for every forbidden reference in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for reason, pattern in FORBIDDEN.items():
            if pattern.search(line):
                found.append(f"{path}:{number}: {reason}: {line.strip()[:120]}")
    return found


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True,
                         capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_the_checkout_is_a_git_repository_with_its_sources_tracked() -> None:
    files = tracked_files()
    assert "pyproject.toml" in files and "tests/data/README.md" in files
    assert any(f.startswith("emvtap/") for f in files)


def test_no_tracked_file_outside_ci_refers_to_material_outside_the_repository() -> None:
    found: list[str] = []
    for path in tracked_files():
        if path.startswith(EXEMPT_DIRS) or not (ROOT / path).is_file():
            continue
        text = (ROOT / path).read_bytes().decode("utf-8", errors="replace")
        found += violations(path, text)
    assert found == [], "references to material outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [
    "see ../" + _NOTES + "/data/traces",
    "facts (" + _NOTES + "/sp" + "ec/hardware-and-virtual-readers.md)",
    "os.environ['EMVTAP_" + _NOTES.upper() + "']",
    "(DES" + "IGN.md \"Layout\")",
    "(emv-" + "dig" + "est §2.6)",
    "as summarised in the dig" + "est §4",
    "tok" + "ens.md \"HCE\"",
    "sp" + "ec/tok" + "ens.md",
    "(iss" + "ue 4 \"Durability\")",
    "Iss" + "ue #10",
])
def test_each_kind_of_outside_reference_is_caught(line: str) -> None:
    assert violations("x.py", f"# {line}\n") != []


@pytest.mark.parametrize("line", [
    "return hashlib.sha1(data).digest()",
    "hmac.compare_digest(expected, mac)",
    "the terminal issues GET RESPONSE on 61xx",
    "SHARE_MODES = {'shared': scard.SCARD_SHARE_SHARED}",
    "what they share lives in emvtap/ (docs/architecture.md)",
    "EMV 4.4 Book 2, 8.1; docs/emv-notes.md, Cryptogram versions",
])
def test_ordinary_words_are_not_taken_for_outside_references(line: str) -> None:
    assert violations("x.py", f"# {line}\n") == []


def test_the_test_data_lives_inside_the_repository() -> None:
    assert DATA_DIR.resolve().is_relative_to(ROOT)
    assert (DATA_DIR / "vectors" / "public.json").is_file()
    assert sorted(p.name for p in (DATA_DIR / "traces").glob("*.json")) == [
        "01_applepay_visa_qvsdc_fdda_pm3sniff.json",
        "04_mastercard_paypass_testcard_cda_genac.json",
        "05_unionpay_pboc_testcard_contact_full.json",
    ]


def test_every_vendored_data_file_has_a_provenance_row() -> None:
    readme = (DATA_DIR / "README.md").read_text()
    data = [p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.rglob("*.json")]
    assert data, "no test data found"
    missing = [name for name in data if f"`{name}`" not in readme]
    assert missing == [], f"tests/data/README.md has no row for {missing}"


def test_the_capk_list_ships_in_the_package_not_in_the_test_data() -> None:
    assert (ROOT / "emvtap" / "data" / "capk.txt").is_file()
    assert not list(DATA_DIR.rglob("capk*"))


DOCS = ("docs/architecture.md", "docs/domain.md", "docs/emv-notes.md")
#: the top-level folders of the repository a doc may point into
TOP_LEVEL = {"emvtap", "terminal", "hce_card", "switch", "lab", "applets", "tests", "docs",
             "scenarios", "udev", "bench", "scripts"}


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_path_a_doc_names_exists(doc: str) -> None:
    text = (ROOT / doc).read_text()
    paths = {p.split(":")[0] for p in re.findall(r"`([\w./-]+/[\w./-]*)`", text)
             if p.split("/")[0] in TOP_LEVEL}
    assert paths, f"{doc} names no path of the repository"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == [], f"{doc} names paths that do not exist: {missing}"
