"""Files that hold secrets - card profiles (ICC master keys, the ICC RSA private key),
limited-use key batches, the switch's store - are readable by their owner only (mode 0600),
whatever the umask, and also when an older file of the same name was wider open."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE_MODE", "create_private_file", "write_private_text"]

PRIVATE_MODE = 0o600


def write_private_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """``Path(path).write_text(text)``, with the file at mode 0600 before any byte is in it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    with os.fdopen(fd, "w", encoding=encoding) as f:
        os.fchmod(f.fileno(), PRIVATE_MODE)
        f.write(text)


def create_private_file(path: str | Path) -> None:
    """Create ``path`` empty at mode 0600 unless it exists (then it is left as it is)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
