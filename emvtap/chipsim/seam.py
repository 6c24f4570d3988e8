"""Where a simulated chip meets nfcpy: the ``read`` of nfcpy's USB transport, which every
simulated chip answers from the queue of frames it has produced."""

from __future__ import annotations

import errno
import os
import queue

__all__ = ["next_frame"]


def next_frame(out: queue.Queue[bytes], timeout: int, *, closed: bool) -> bytearray:
    """The next frame from the chip within *timeout* ms (0: wait forever, as libusb does);
    ``ENODEV`` once the device is closed, ``ETIMEDOUT`` when nothing came - the errors
    nfcpy's transport raises."""
    if closed:
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
    try:
        return bytearray(out.get(timeout=timeout / 1000 if timeout else None))
    except queue.Empty:
        raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
