"""The wallet side of a scenario (docs/domain.md, "The system around a tap"): a wallet server
process between the cards' wallets and the switch's admin API, one wallet per card (its device
card imported from the card's profile and state files), and a merchant taking in-app payments -
all reached through their command lines, like the rest of the runner."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from lab.hil.procs import EMVTAP, run_emvtap
from lab.hil.results import RigError
from lab.hil.switch_link import ADMIN_TOKEN_ENV, SwitchProcess

__all__ = ["WalletRig"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WalletRig:
    """Started on the first step that needs it; :meth:`stop` ends the wallet server."""

    def __init__(self, workdir: Path, switch: SwitchProcess) -> None:
        self.workdir, self.switch = workdir, switch
        self.port = _free_port()
        self.log = open(workdir / "wallet-server.log", "w")  # noqa: SIM115 - closed in stop()
        import os

        self.proc = subprocess.Popen(
            [*EMVTAP, "wallet", "server", "--port", str(self.port), "--switch-admin",
             switch.admin_address], stdout=subprocess.DEVNULL, stderr=self.log,
            env=os.environ | {ADMIN_TOKEN_ENV: switch.token})
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RigError(f"the wallet server exited: see {workdir}/wallet-server.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RigError("the wallet server did not start") from None
                time.sleep(0.05)
        self.merchant = workdir / "merchant"
        run_emvtap(["merchant", "init", "--merchant", str(self.merchant), "--id", "HILSHOP1"])
        self.wallets: dict[str, Path] = {}
        self.passcode = f"{secrets.randbelow(10**6):06d}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def wallet(self, card: Any, device: str, form: str) -> Path:
        """The wallet of ``card``'s device, its device card imported (once)."""
        if card.name not in self.wallets:
            path = self.workdir / f"wallet-{card.name}"
            run_emvtap(["wallet", "init", "--wallet", str(path), "--device-id", device,
                        "--form", form, "--passcode", self.passcode, "--server",
                        f"http://127.0.0.1:{self.port}"])
            run_emvtap(["wallet", "import", "--wallet", str(path), "--profile",
                        str(card.profile), "--state", str(card.state)])
            self.wallets[card.name] = path
        return self.wallets[card.name]

    def pay(self, wallet: Path, amount_text: str, passcode: str | None, tag: str
            ) -> tuple[str, str, str]:
        """``(result, response code, output)``: REFUSED when the device refused."""
        order = self.workdir / f"order-{tag}.json"
        token = self.workdir / f"token-{tag}.json"
        run_emvtap(["merchant", "checkout", "--merchant", str(self.merchant), "--amount",
                    amount_text, "--out", str(order)])
        args = ["wallet", "pay-in-app", "--wallet", str(wallet), "--amount", amount_text,
                "--merchant", str(order), "--out", str(token)]
        if passcode is not None:
            # the scenario's "passcode" means: the cardholder enters the device passcode
            args += ["--passcode", self.passcode if passcode == "right" else passcode]
        done = subprocess.run([*EMVTAP, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return "REFUSED", "", (done.stdout + done.stderr).strip()
        done = subprocess.run([*EMVTAP, "merchant", "charge", "--merchant", str(self.merchant),
                               "--token", str(token), "--switch", self.switch.address],
                              capture_output=True, text=True, timeout=60)
        words = done.stdout.split()
        if done.returncode not in (0, 1) or len(words) < 2:
            raise RigError(f"merchant charge failed: {done.stdout}{done.stderr}")
        return words[0], words[1], done.stdout.strip()

    def sync(self, wallet: Path) -> str:
        return run_emvtap(["wallet", "sync", "--wallet", str(wallet)]).strip()
