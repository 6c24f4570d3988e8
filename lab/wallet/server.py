"""The wallet server: the handset maker's hop between the wallet on the device and the
network's token service (docs/domain.md, "The system around a tap"). A real HTTP process
(``emvtap wallet server``) on 127.0.0.1; it reaches the TSP only through the switch's admin API
(``switch/admin.py``), never its database.

=======  ===============================  ===================================================
method   path                             what
=======  ===============================  ===================================================
POST     /v1/cards                        over-the-air issuance: the TSP provisions; an SE
                                          form gets its personalisation as a STORE DATA
                                          script for the secure element, the HCE form its
                                          profile and first batch of limited-use keys
POST     /v1/cards/{mpan}/{action}        the device channel's lifecycle: ``suspend``,
                                          ``resume``, ``delete``, ``set-default``
POST     /v1/cards/{mpan}/keys            HCE: the next batch of limited-use keys
GET      /v1/cards/{mpan}/updates         the network's pushes for the card (``?since=``)
=======  ===============================  ===================================================

Errors are JSON ``{"error": "..."}`` with the TSP's status (400, 404) or 502 when the TSP
does not answer. PANs are masked in the access log.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from emvtap.masking import mask_text

__all__ = ["ACTIONS", "TspError", "WalletServer"]

log = logging.getLogger("lab.wallet.server")

#: wallet action → the lifecycle event the device channel asks for (switch/LIFECYCLE.md)
ACTIONS = {
    "suspend": "token.suspend",
    "resume": "token.resume",
    "delete": "token.delete",
    "set-default": "token.set_default",
}
MAX_BODY = 1 << 16
#: schemes the Java Card applet can be personalised for (it computes PBOC CVN 01 only)
SE_SCHEMES = ("quickpass",)
_CARD_ACTION = re.compile(r"^/v1/cards/(?P<mpan>\d{12,19})/(?P<action>[a-z-]+)$")
_CARD_UPDATES = re.compile(r"^/v1/cards/(?P<mpan>\d{12,19})/updates$")


class TspError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WalletServer:
    """The wallet server in a background thread (``start``/``stop``)."""

    def __init__(self, admin_url: str, admin_token: str, *, host: str = "127.0.0.1",
                 port: int = 0, timeout: float = 30.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.admin_token = admin_token
        self.timeout = timeout
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wallet-server",
                                        daemon=True)
        self._thread.start()
        return self.port

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # --- the TSP, over the admin API ------------------------------------------------------

    def tsp(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.admin_url + path, method=method,
            data=json.dumps(body or {}).encode() if method == "POST" else None,
            headers={"Authorization": f"Bearer {self.admin_token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                detail = str(exc)
            raise TspError(exc.code, f"token service: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TspError(HTTPStatus.BAD_GATEWAY, f"token service unreachable: {exc}") from None

    # --- the wallet's requests --------------------------------------------------------------

    def add_card(self, body: dict[str, Any]) -> dict[str, Any]:
        from emvtap.profile import CardProfile
        from lab.applet.perso import perso_apdus

        for name in ("span", "device_id", "device_type"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise TspError(HTTPStatus.BAD_REQUEST, f"missing {name}")
        scheme = str(body.get("scheme") or "quickpass")
        if body["device_type"] != "hce" and scheme not in SE_SCHEMES:
            # asked before the TSP issues a token that could never be installed
            raise TspError(HTTPStatus.BAD_REQUEST,
                           f"the secure element's applet (applets/) runs {', '.join(SE_SCHEMES)}"
                           f" only, not {scheme}: add it in the hce form")
        answer = self.tsp("POST", "/api/provision", {
            "span": body["span"], "device_id": body["device_id"],
            "device_type": body["device_type"], "channel": "device",
            "token_requestor_id": str(body.get("token_requestor_id") or "50012345678"),
            "scheme": scheme,
            "purpose": str(body.get("purpose") or "any"),
        })
        profile = answer["profile"]
        app = profile["applications"][0]
        out = {"mpan": answer["mpan"], "is_default": answer["is_default"],
               "form": body["device_type"],
               "no_password_limit": app.get("extra", {}).get("no_password_limit", 0)}
        if body["device_type"] == "hce":
            # the SDK path: the profile (no master key) and the first batch go to the app
            return out | {"profile": profile, "limited_use_keys": answer["limited_use_keys"]}
        # SE forms: the personalisation travels as a script for the secure element only
        script = perso_apdus(CardProfile.from_dict(profile))
        return out | {"script": [apdu.hex().upper() for apdu in script]}

    def card_action(self, mpan: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action not in ACTIONS:
            raise TspError(HTTPStatus.NOT_FOUND, f"no action {action!r} "
                                                 f"(one of {', '.join(ACTIONS)})")
        token = self.tsp("GET", f"/api/tokens/{mpan}")
        if token.get("device_id") != body.get("device_id"):
            raise TspError(HTTPStatus.FORBIDDEN, "the card is not on this device")
        return self.tsp("POST", "/api/events", {"event": ACTIONS[action], "subject": mpan,
                                                "channel": "device"})

    def keys(self, mpan: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.tsp("GET", f"/api/tokens/{mpan}")
        if token.get("device_id") != body.get("device_id"):
            raise TspError(HTTPStatus.FORBIDDEN, "the card is not on this device")
        return self.tsp("POST", f"/api/tokens/{mpan}/limited-use-keys", {"channel": "device"})

    def updates(self, mpan: str, since: int) -> dict[str, Any]:
        return self.tsp("GET", f"/api/tokens/{mpan}/updates?since={since}")


def _make_handler(server: WalletServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "emvtap-wallet-server/1"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), mask_text(format % args))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any] | None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._send(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
                return None
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
                return None
            if not isinstance(body, dict):
                self._send(HTTPStatus.BAD_REQUEST, {"error": "body must be an object"})
                return None
            return body

        def _run(self, work: Any) -> None:
            try:
                self._send(HTTPStatus.OK, work())
            except TspError as exc:
                self._send(exc.status, {"error": str(exc)})

        def do_POST(self) -> None:
            body = self._body()
            if body is None:
                return
            path = urlsplit(self.path).path
            if path == "/v1/cards":
                self._run(lambda: server.add_card(body))
                return
            match = _CARD_ACTION.match(path)
            if match and match["action"] == "keys":
                self._run(lambda: server.keys(match["mpan"], body))
                return
            if match:
                self._run(lambda: server.card_action(match["mpan"], match["action"], body))
                return
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no route POST {path}"})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            match = _CARD_UPDATES.match(url.path)
            if not match:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no route GET {url.path}"})
                return
            since = url.query.partition("since=")[2].split("&")[0] or "0"
            if not since.isdigit():
                self._send(HTTPStatus.BAD_REQUEST, {"error": "since is a number"})
                return
            self._run(lambda: server.updates(match["mpan"], int(since)))

    return Handler
