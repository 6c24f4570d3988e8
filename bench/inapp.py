"""In-app payment latency: ``python -P bench/inapp.py [N] [SCHEME]`` (``-P``: bench/switch.py
must not shadow the switch package). A switch with its admin API,
a wallet server (each on a real 127.0.0.1 socket, in threads), an HCE wallet card issued over the
air, and N in-app payments below the no-password limit: per payment the device side (the card's
cryptogram over the order + the token encrypted to the merchant) and the merchant side (decrypt,
0100/0110 over TCP), in milliseconds."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from lab.merchant.shop import Merchant, init_merchant
from lab.wallet.device import Wallet
from lab.wallet.server import WalletServer
from switch.admin import AdminServer
from switch.store import Store
from switch.testing import running_switch


def main(n: int = 20, scheme: str = "quickpass") -> None:
    tmp = Path(tempfile.mkdtemp(prefix="emvtap-inapp-"))
    db = tmp / "switch.db"
    with Store(db) as store, store.transaction():
        account = store.add_account(balance=10**9)
        store.add_card("6228480000000015", account, "3112", no_password_limit=10**6)
    admin = AdminServer(db, "bench", port=0)
    admin.start()
    wallet_server = WalletServer(f"http://127.0.0.1:{admin.port}", "bench")
    wallet_server.start()
    try:
        with running_switch(db) as switch:
            wallet = Wallet.create(tmp / "w", "phone-1", "hce", "2468",
                                   server=f"http://127.0.0.1:{wallet_server.port}")
            started = time.perf_counter()
            wallet.add_card("6228480000000015", scheme=scheme)
            issuance = (time.perf_counter() - started) * 1000
            init_merchant(tmp / "m", "BENCH001")
            merchant = Merchant(tmp / "m")
            device, acquirer = [], []
            for _ in range(n):
                order = merchant.new_order(1000)
                t0 = time.perf_counter()
                token = wallet.pay_in_app(order, 1000)
                t1 = time.perf_counter()
                result = merchant.charge(token, f"127.0.0.1:{switch.port}")
                t2 = time.perf_counter()
                assert result.approved, result
                device.append((t1 - t0) * 1000)
                acquirer.append((t2 - t1) * 1000)
    finally:
        wallet_server.stop()
        admin.stop()
    print(f"{scheme}: over-the-air issuance (HCE) {issuance:.1f} ms")
    for name, values in (("device (cryptogram + token)", device),
                         ("merchant (decrypt + 0100/0110)", acquirer)):
        print(f"{name}: median {statistics.median(values):.1f} ms, "
              f"max {max(values):.1f} ms over {n}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20,
         sys.argv[2] if len(sys.argv) > 2 else "quickpass")
