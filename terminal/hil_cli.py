"""``emvtap hil``: hardware-in-the-loop scenario runs (work in progress)."""

from __future__ import annotations

import click

__all__ = ["hil"]


@click.group("hil")
def hil() -> None:
    """Hardware-in-the-loop scenarios on real or virtual readers."""
