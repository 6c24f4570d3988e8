"""The admin API: HTTP + JSON on 127.0.0.1, protected by a bearer token (switch/README.md).

Built on the standard library (``http.server``) so the switch needs no web framework; the routes
are one table (:data:`ROUTES`) from which both the dispatcher and the OpenAPI 3.1 document
(``GET /openapi.json``, no token needed) are generated. Every other path needs
``Authorization: Bearer <token>``.

=======  ==================================  ==============================================
method   path                                what
=======  ==================================  ==============================================
GET      /api/accounts                       accounts with balances
POST     /api/accounts                       open an account
POST     /api/cards                          issue a physical card (SPAN) on an account
GET      /api/cards/{span}                   one card
POST     /api/provision                      bind a SPAN to a device: MPAN, keys, profile
GET      /api/tokens                         device cards (``?span=``, ``?device_id=``)
GET      /api/tokens/{mpan}                  one device card
POST     /api/events                         a lifecycle event (switch/LIFECYCLE.md)
GET      /api/events                         the event log (``?mpan=``, ``?since=``)
GET      /api/authorizations                 authorization history (``?mpan=``, ``?limit=``)
POST     /api/tokens/{mpan}/limited-use-keys HCE: replenish limited-use keys (TSP endpoint)
GET      /api/tokens/{mpan}/limited-use-keys HCE: issued / used / unused counts
GET      /api/tokens/{mpan}/updates          the push feed of one device card (``?since=``)
=======  ==================================  ==============================================

Bounds: a request (headers or body) that stalls for ``request_timeout`` seconds is closed (408
when its headers were complete), and at most ``max_connections`` are served at a time (more are
closed at once), so half-sent requests cannot hold threads or wait forever.

Errors are JSON ``{"error": "...", "reason": "..."}`` with 400 (bad request or a rule of the
vault), 401 (token), 404 (no such thing). PANs are masked in the access log.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from emvtap.masking import mask_text
from switch.admin_schema import (
    BODIES,
    PATH_PARAMETERS,
    QUERY_PARAMETERS,
    FieldError,
    first_error,
)
from switch.lifecycle import LIFECYCLE, LifecycleError, Policy, apply_event
from switch.pin import hash_pin
from switch.store import Store, StoreError
from switch.tsp import ProvisioningError, TspConfig, provision, replenish_limited_use_keys

__all__ = ["ROUTES", "AdminServer", "load_or_create_token", "openapi_document"]

log = logging.getLogger("switch.admin")

Json = dict[str, Any]

#: Largest JSON body a POST may carry.
MAX_BODY = 1 << 20


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class Route(NamedTuple):
    method: str
    path: str  # with {name} parameters
    handler: str  # method name on _Api
    summary: str
    body: tuple[str, ...] = ()  # required JSON body fields


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/accounts", "list_accounts", "Accounts with balances"),
    Route("POST", "/api/accounts", "add_account", "Open an account", ()),
    Route("POST", "/api/cards", "add_card", "Issue a physical card", ("span", "account_id")),
    Route("GET", "/api/cards/{span}", "get_card", "One physical card"),
    Route(
        "POST",
        "/api/provision",
        "provision",
        "Bind a SPAN to a device (over-the-air issuance)",
        ("span", "device_id", "device_type", "token_requestor_id"),
    ),
    Route("GET", "/api/tokens", "list_tokens", "Device cards"),
    Route("GET", "/api/tokens/{mpan}", "get_token", "One device card"),
    Route("POST", "/api/events", "event", "A lifecycle event", ("event", "subject", "channel")),
    Route("GET", "/api/events", "list_events", "The append-only event log"),
    Route("GET", "/api/authorizations", "list_authorizations", "Authorization history"),
    Route(
        "POST",
        "/api/tokens/{mpan}/limited-use-keys",
        "replenish",
        "HCE: a new batch of limited-use keys",
    ),
    Route("GET", "/api/tokens/{mpan}/limited-use-keys", "key_status", "HCE: key counts"),
    Route(
        "GET",
        "/api/tokens/{mpan}/updates",
        "token_updates",
        "What the network pushes to the device card: state, default, limit, events (?since=)",
    ),
)


def _compile(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


_COMPILED = [(r, _compile(r.path)) for r in ROUTES]


#: handler → the query parameters it reads
_QUERY: dict[str, tuple[str, ...]] = {
    "list_tokens": ("span", "device_id"),
    "list_events": ("mpan", "since"),
    "list_authorizations": ("mpan", "limit"),
}


def openapi_document() -> Json:
    """OpenAPI 3.1 description of :data:`ROUTES`."""
    paths: Json = {}
    for route in ROUTES:
        params = [
            {"name": n, "in": "path", "required": True, "schema": PATH_PARAMETERS[n]}
            for n in re.findall(r"\{(\w+)\}", route.path)
        ] + [
            {"name": n, "in": "query", "required": False, "schema": QUERY_PARAMETERS[n]}
            for n in _QUERY.get(route.handler, ())
        ]
        op: Json = {
            "summary": route.summary,
            "operationId": route.handler,
            "parameters": params,
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"description": "bad request or a vault rule"},
                "401": {"description": "missing or wrong token"},
                "404": {"description": "not found"},
                "408": {"description": "request not sent in time"},
                "422": {"description": "a field does not match its schema (named in `field`)"},
            },
        }
        if route.method == "POST":
            op["requestBody"] = {
                "required": bool(route.body),
                "content": {"application/json": {"schema": BODIES[route.handler]}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "emvtap switch admin API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def _token_json(t: Any) -> Json:
    d = asdict(t)
    for k in ("key_ac", "key_smi", "key_smc"):
        d.pop(k)  # keys never leave the vault through the API
    d["domain"] = dict(t.domain)
    d["holds"] = list(t.holds)
    return d


class _Api:
    """The handlers: each takes path parameters, query and body, returns JSON."""

    def __init__(self, store: Store, config: TspConfig, policy: Policy) -> None:
        self.store, self.config, self.policy = store, config, policy

    def list_accounts(self, q: Json, body: Json) -> Json:
        accounts = [
            {k: v for k, v in asdict(a).items() if k != "pin_hash"} | {"available": a.available}
            for a in self.store.accounts()
        ]
        return {"accounts": accounts}

    def add_account(self, q: Json, body: Json) -> Json:
        allowed = {"holder", "kind", "currency", "balance", "credit_limit", "daily_limit", "pin"}
        if set(body) - allowed:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown fields {sorted(set(body) - allowed)}")
        values = dict(body)
        pin = values.pop("pin", None)
        if pin is not None:
            values["pin_hash"] = hash_pin(str(pin))
        with self.store.transaction():
            account_id = self.store.add_account(**values)
        return {"account_id": account_id}

    def add_card(self, q: Json, body: Json) -> Json:
        with self.store.transaction():
            if self.store.account(int(body["account_id"])) is None:
                raise ApiError(HTTPStatus.NOT_FOUND, "no such account")
            self.store.add_card(
                str(body["span"]),
                int(body["account_id"]),
                str(body.get("expiry", "3112")),
                psn=str(body.get("psn", "00")),
                no_password_limit=int(body.get("no_password_limit", 0)),
            )
        return {"span": body["span"]}

    def get_card(self, q: Json, body: Json, span: str) -> Json:
        card = self.store.card(span)
        if card is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "no such card")
        return asdict(card)

    def provision(self, q: Json, body: Json) -> Json:
        result = provision(
            self.store,
            span=str(body["span"]),
            device_id=str(body["device_id"]),
            device_type=str(body["device_type"]),
            token_requestor_id=str(body["token_requestor_id"]),
            channel=str(body.get("channel", "device")),
            purpose=str(body.get("purpose", "contactless")),
            assurance_level=str(body.get("assurance_level", "00")),
            config=self.config,
            scheme=str(body.get("scheme", "quickpass")),
        )
        return {
            "mpan": result.mpan,
            "is_default": result.is_default,
            "profile": result.profile,
            "limited_use_keys": result.limited_use_keys,
        }

    def list_tokens(self, q: Json, body: Json) -> Json:
        tokens = self.store.tokens(span=q.get("span"), device_id=q.get("device_id"))
        return {"tokens": [_token_json(t) for t in tokens]}

    def get_token(self, q: Json, body: Json, mpan: str) -> Json:
        token = self.store.token(mpan)
        if token is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "no such token")
        return _token_json(token)

    def event(self, q: Json, body: Json) -> Json:
        changes = apply_event(
            self.store,
            str(body["event"]),
            str(body["subject"]),
            channel=str(body["channel"]),
            params=body.get("params") or {},
            policy=self.policy,
        )
        return {"changes": [asdict(c) for c in changes]}

    def list_events(self, q: Json, body: Json) -> Json:
        return {"events": self.store.events(mpan=q.get("mpan"), since=int(q.get("since", 0)))}

    def list_authorizations(self, q: Json, body: Json) -> Json:
        rows = self.store.authorizations(mpan=q.get("mpan"), limit=int(q.get("limit", 100)))
        return {"authorizations": rows}

    def replenish(self, q: Json, body: Json, mpan: str) -> Json:
        count = body.get("count")
        return replenish_limited_use_keys(
            self.store,
            mpan,
            count=int(count) if count is not None else None,
            channel=str(body.get("channel", "device")),
            config=self.config,
        )

    def token_updates(self, q: Json, body: Json, mpan: str) -> Json:
        """The push feed a wallet server relays to the device (docs/domain.md: the limit, a
        suspension, a deletion reach the device card): the token's state now, the issuer's
        in-app no-password limit now, and the token's events after ``since``."""
        token = self.store.token(mpan)
        if token is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "no such token")
        card = self.store.card(token.span)
        events = self.store.events(mpan=mpan, since=int(q.get("since", 0)))
        return {
            "mpan": mpan,
            "state": str(token.state),
            "holds": list(token.holds),
            "is_default": token.is_default,
            "no_password_limit": card.no_password_limit if card else None,
            "last_event": max([e["seq"] for e in events], default=int(q.get("since", 0))),
            "events": [
                {k: e.get(k) for k in ("seq", "at", "channel", "event", "to_state", "detail")}
                for e in events
            ],
        }

    def key_status(self, q: Json, body: Json, mpan: str) -> Json:
        if self.store.token(mpan) is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "no such token")
        return self.store.limited_use_key_status(mpan)


def load_or_create_token(path: str | Path) -> str:
    """The admin token kept next to the store (created with mode 600 on first use)."""
    p = Path(path)
    if p.exists():
        p.chmod(0o600)  # owner only, also when an older file was wider open
        return p.read_text().strip()
    token = secrets.token_urlsafe(24)
    p.touch(mode=0o600)
    p.write_text(token + "\n")
    return token


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per request, at most ``max_connections`` at a time (the rest closed at once)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            if self.refused == 1:
                log.warning("admin API: connection cap reached; refusing")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class AdminServer:
    """The admin API in a background thread (``start``/``stop``), its own store connection."""

    def __init__(
        self,
        db_path: str | Path,
        token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8584,
        config: TspConfig | None = None,
        policy: Policy | None = None,
        request_timeout: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        if not token:
            raise ValueError("the admin API needs a token")
        self.request_timeout = request_timeout
        self.store = Store(db_path)
        self.api = _Api(self.store, config or TspConfig(), policy or Policy())
        self.lock = threading.Lock()  # one store connection: one request at a time
        handler = _make_handler(self, token)
        self.httpd = _BoundedHTTPServer((host, port), handler, max_connections)
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.1,), name="switch-admin", daemon=True
        )
        self._thread.start()
        log.info("admin API on %s:%d", *self.httpd.server_address[:2])
        return self.port

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.store.close()

    def dispatch(self, method: str, target: str, body: Json) -> tuple[HTTPStatus, Json]:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        for route, pattern in _COMPILED:
            match = pattern.match(url.path)
            if match is None or route.method != method:
                continue
            try:
                first_error(route.handler, body, {**query, **match.groupdict()})
            except FieldError as exc:
                return HTTPStatus.UNPROCESSABLE_ENTITY, {
                    "error": str(exc),
                    "field": exc.field,
                    "reason": "invalid_field",
                }
            handler: Callable[..., Json] = getattr(self.api, route.handler)
            try:
                with self.lock:
                    return HTTPStatus.OK, handler(query, body, **match.groupdict())
            except ApiError as exc:
                return exc.status, {"error": str(exc), "reason": exc.reason}
            except ProvisioningError as exc:
                return HTTPStatus.BAD_REQUEST, {"error": str(exc), "reason": exc.reason}
            except (LifecycleError, StoreError, ValueError, TypeError) as exc:
                return HTTPStatus.BAD_REQUEST, {"error": str(exc), "reason": type(exc).__name__}
        return HTTPStatus.NOT_FOUND, {"error": f"no route {method} {url.path}"}


def _make_handler(server: AdminServer, token: str) -> type[BaseHTTPRequestHandler]:
    expected = token.encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "emvtap-switch-admin/1"
        timeout = server.request_timeout  # every read and write of the socket

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), mask_text(format % args))

        def _send(self, status: HTTPStatus, payload: Json) -> None:
            data = json.dumps(payload, indent=1, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            # RFC 7235 2.1: the auth-scheme is case-insensitive
            scheme, _, given = (self.headers.get("Authorization") or "").strip().partition(" ")
            ok = hmac.compare_digest(given.strip().encode(errors="replace"), expected)
            return ok and scheme.lower() == "bearer"

        def _handle(self, method: str) -> None:
            if method == "GET" and self.path == "/openapi.json":
                self._send(HTTPStatus.OK, openapi_document())
                return
            if not self._authorised():
                self._send(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
                return
            body: Json = {}
            if method == "POST":
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:  # read(-1) would read until the client closes
                    self._send(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
                    return
                if length > MAX_BODY:
                    self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                    return
                try:
                    raw = self.rfile.read(length)
                except TimeoutError:
                    self.close_connection = True
                    self._send(HTTPStatus.REQUEST_TIMEOUT, {"error": "body not sent in time"})
                    return
                if len(raw) < length:  # the client closed before the whole body
                    self.close_connection = True
                    return
                try:
                    body = json.loads(raw or b"{}")
                except (ValueError, RecursionError) as exc:  # also too deep, too many digits
                    self._send(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
                    return
                if not isinstance(body, dict):
                    self._send(HTTPStatus.BAD_REQUEST, {"error": "body must be an object"})
                    return
            status, payload = server.dispatch(method, self.path, body)
            self._send(status, payload)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


#: lifecycle events the API accepts (for documentation and the CLI's choices)
EVENTS = tuple(sorted(LIFECYCLE))
