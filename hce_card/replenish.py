"""Replenishing an HCE wallet through the switch's TSP (docs/domain.md, Device
types; ``switch/admin.py``): ``POST /api/tokens/{mpan}/limited-use-keys`` on the admin API with
``Authorization: Bearer <token>`` and ``{"count": n, "channel": "device"}``; the answer is a
key batch (``emvtap-luk-batch/1``, :func:`hce_card.wallet.parse_batch`).

The batch is dropped into the card's inbox (``StateStore.inbox``), written atomically, and the
card imports it at its next SELECT - so replenishing works while ``emvtap card run`` serves.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emvtap.masking import mask_pan
from hce_card.state import LukBatch
from hce_card.wallet import parse_batch

__all__ = ["DEFAULT_ADMIN_PORT", "ReplenishError", "drop_in_inbox", "request_batch"]

DEFAULT_ADMIN_PORT = 8584


class ReplenishError(RuntimeError):
    """The TSP refused or could not be reached; the message says which and why."""


def request_batch(host: str, port: int, mpan: str, token: str, count: int | None = None,
                  timeout: float = 10.0) -> tuple[LukBatch, bytes]:
    """Ask the TSP for a new batch for ``mpan``; returns it parsed and as received."""
    body: dict[str, Any] = {"channel": "device"}
    if count is not None:
        body["count"] = count
    request = urllib.request.Request(
        f"http://{host}:{port}/api/tokens/{mpan}/limited-use-keys",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise ReplenishError(f"TSP answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReplenishError(f"cannot reach the TSP at {host}:{port}: {exc}") from None
    try:
        batch = parse_batch(raw)
    except ValueError as exc:
        raise ReplenishError(f"the TSP's answer is not a key batch: {exc}") from None
    if batch.mpan and batch.mpan != mpan:
        raise ReplenishError(f"the batch is for {mask_pan(batch.mpan)}, not {mask_pan(mpan)}")
    return batch, raw


def drop_in_inbox(inbox: Path, raw: bytes, batch: LukBatch) -> Path:
    """Write the batch into the card's inbox atomically (temporary file, fsync, rename)."""
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / f"batch-{batch.batch:06d}.json"
    fd, tmp = tempfile.mkstemp(prefix=".batch-", dir=inbox)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
