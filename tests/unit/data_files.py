"""The test data vendored in tests/data/ (public vectors, recorded traces); tests/data/README.md
says where each file came from. Nothing here reads outside the repository."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["DATA_DIR", "load_trace", "public_vectors", "trace_path", "traces_dir"]

#: tests/data/ of this checkout
DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def traces_dir() -> Path:
    return DATA_DIR / "traces"


def trace_path(name: str) -> Path:
    """The path of one recorded trace; a clear error when the file is missing."""
    path = traces_dir() / name
    if not path.is_file():
        raise AssertionError(f"recorded trace {path} not found (see tests/data/README.md)")
    return path


@cache
def public_vectors() -> dict[str, Any]:
    return json.loads((DATA_DIR / "vectors" / "public.json").read_text())


def load_trace(name: str) -> dict[str, Any]:
    return json.loads(trace_path(name).read_text())
