"""The kinds of device a device card (a token) lives on: the one list the perso tool, the
profile, the switch's TSP and store, the HIL scenarios and every CLI choice are built from
(docs/contracts.md, "One home per shared contract").

==============  ==========================================================================
device type     the device card
==============  ==========================================================================
handset-se      in a phone's secure element: ICC master keys in the SE
wearable-se     in a watch's or band's secure element: ICC master keys in the SE
hce             host card emulation in a phone app: no master key on the device, only
                limited-use session keys the TSP sends in batches
==============  ==========================================================================
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DEVICE_TYPE_NAMES", "DeviceType", "sql_check"]


class DeviceType(StrEnum):
    HANDSET_SE = "handset-se"
    WEARABLE_SE = "wearable-se"
    HCE = "hce"

    @property
    def limited_use(self) -> bool:
        """The device holds limited-use keys, not the ICC master keys."""
        return self is DeviceType.HCE

    @classmethod
    def parse(cls, value: object) -> DeviceType:
        """``value`` as a device type; :class:`ValueError` naming the accepted ones."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"device type {value!r} is not one of "
                             f"{', '.join(DEVICE_TYPE_NAMES)}") from None


#: the names, in order (for ``click.Choice`` and messages).
DEVICE_TYPE_NAMES: tuple[str, ...] = tuple(t.value for t in DeviceType)


def sql_check(column: str) -> str:
    """An SQL ``CHECK`` expression that holds for the device type names only."""
    return f"{column} IN ({', '.join(repr(name) for name in DEVICE_TYPE_NAMES)})"
