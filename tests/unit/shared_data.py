"""Where the tests find ../shared (public vectors, recorded traces): beside the repository, as CI
clones it, or wherever $EMVTAP_SHARED points."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["load_trace", "public_vectors", "shared_dir", "traces_dir"]


def shared_dir() -> Path:
    env = os.environ.get("EMVTAP_SHARED")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"
    if not path.is_dir():
        raise AssertionError(f"shared data not found at {path} (set EMVTAP_SHARED)")
    return path


def traces_dir() -> Path:
    return shared_dir() / "data" / "traces"


@cache
def public_vectors() -> dict[str, Any]:
    return json.loads((shared_dir() / "data" / "vectors" / "public.json").read_text())


def load_trace(name: str) -> dict[str, Any]:
    path = traces_dir() / name
    if not path.is_file():
        raise AssertionError(f"recorded trace {path} not found (set EMVTAP_SHARED)")
    return json.loads(path.read_text())
