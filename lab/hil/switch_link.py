"""The switch as the runner reaches it: ``emvtap switch serve`` on a fresh store (ISO 8583 and
admin ports chosen by the system, read back from its banner), the admin API (HTTP + JSON,
bearer token; switch/admin.py) for issuance and lifecycle events, and ``emvtap switch …``
command lines for what the runner does through the CLI (enrolment, events with ``via: cli``).
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emvtap.endpoints import parse_host_port
from lab.hil.procs import Child, run_emvtap
from lab.hil.results import RigError, Unsupported

__all__ = ["ADMIN_TOKEN_ENV", "AdminError", "SwitchProcess"]

ADMIN_TOKEN_ENV = "EMVTAP_SWITCH_ADMIN_TOKEN"
READY = re.compile(r"admin API http://(\S+?)/")
SERVING = re.compile(r"switch: serving (\S+),")
AFFECTED = re.compile(r"(\d+) device card\(s\) affected")


class AdminError(RigError):
    """The admin API refused a request (status and the switch's reason)."""

    def __init__(self, status: int, error: str, reason: str = "") -> None:
        super().__init__(f"admin API answered {status}: {error}"
                         + (f" [{reason}]" if reason else ""))
        self.status, self.error, self.reason = status, error, reason


class SwitchProcess:
    """One switch for one scenario, on its own SQLite file in *workdir*."""

    def __init__(self, workdir: Path, timeout: float = 10.0) -> None:
        self.workdir = workdir
        self.db = workdir / "switch.db"
        self.token = secrets.token_urlsafe(24)
        self.timeout = timeout
        self.iso_port = 0
        self.admin_port = 0
        self._child = Child(
            "switch",
            ["switch", "serve", "--db", str(self.db), "--port", "0", "--admin-port", "0"],
            workdir / "switch.log",
            READY,
            env={ADMIN_TOKEN_ENV: self.token},
        )

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the ISO 8583 listener, as ``terminal pay --switch`` takes it."""
        return f"127.0.0.1:{self.iso_port}"

    @property
    def admin_address(self) -> str:
        return f"127.0.0.1:{self.admin_port}"

    def start(self) -> SwitchProcess:
        self._child.start()
        ready = self._child.wait_ready(self.timeout)
        self.admin_port = parse_host_port(ready.group(1)).port
        serving = SERVING.search(self._child.tail(200))
        if serving is None:
            raise RigError(f"the switch did not say where it serves:\n{self._child.tail()}")
        self.iso_port = parse_host_port(serving.group(1)).port
        return self

    def stop(self) -> None:
        self._child.stop()

    def check_alive(self) -> None:
        if not self._child.alive:
            raise RigError(f"the switch exited (code {self._child.returncode}):\n"
                           f"{self._child.tail()}")

    # -- admin API ------------------------------------------------------------------------

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One admin API call; the JSON answer, or :class:`AdminError`."""
        request = urllib.request.Request(
            f"http://{self.admin_address}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except (json.JSONDecodeError, OSError):
                answer = {}
            error = str(answer.get("error", exc.reason))
            if exc.code == 404 and error.startswith("no route"):
                raise Unsupported(f"admin API route {method} {path.split('?')[0]}") from None
            raise AdminError(exc.code, error, str(answer.get("reason", ""))) from None
        except (urllib.error.URLError, OSError) as exc:
            self.check_alive()
            raise RigError(f"admin API at {self.admin_address} unreachable: {exc}") from None

    def open_card(self, span: str, holder: str, balance_minor: int, *,
                  no_password_limit: int = 0, pin: str | None = None) -> None:
        """An issuer account (with the transaction PIN, if any) and a physical card SPAN."""
        account: dict[str, Any] = {"holder": holder, "kind": "debit", "balance": balance_minor}
        if pin is not None:
            account["pin"] = pin
        account_id = self.api("POST", "/api/accounts", account)["account_id"]
        self.api("POST", "/api/cards", {"span": span, "account_id": account_id,
                                        "no_password_limit": no_password_limit})

    def provision(self, span: str, device_id: str, device_type: str, scheme: str = "quickpass",
                  purpose: str = "contactless") -> dict[str, Any]:
        """Over-the-air issuance: ``{"mpan", "profile", "limited_use_keys"}``."""
        return self.api("POST", "/api/provision", {
            "span": span, "device_id": device_id, "device_type": device_type,
            "token_requestor_id": "50012345678", "channel": "device", "scheme": scheme,
            "purpose": purpose,
        })

    def event(self, event: str, subject: str, channel: str, params: dict[str, Any],
              via: str) -> int:
        """Apply a lifecycle event; the number of device cards it changed."""
        if via == "api":
            answer = self.api("POST", "/api/events", {
                "event": event, "subject": subject, "channel": channel, "params": params})
            return len(answer.get("changes", []))
        args = ["switch", "event", "--db", str(self.db), "--channel", channel]
        for key, value in params.items():
            args += ["--param", f"{key}={value}"]
        output = run_emvtap([*args, event, subject], timeout=self.timeout)
        match = AFFECTED.search(output)
        if match is None:
            raise RigError(f"`emvtap switch event` did not say what it changed:\n{output}")
        return int(match.group(1))

    # -- CLI ------------------------------------------------------------------------------

    def enroll(self, profile: Path, balance: str, *, no_password_limit: str = "",
               pin: str | None = None) -> None:
        """``emvtap switch enroll``: a personalised card's token into the vault."""
        args = ["switch", "enroll", "--db", str(self.db), "--balance", balance]
        if no_password_limit:
            args += ["--no-password-limit", no_password_limit]
        if pin is not None:
            args += ["--pin", pin]
        run_emvtap([*args, str(profile)], timeout=self.timeout)
