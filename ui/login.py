"""The app's login check: slow to guess, locked after repeated failures, per client address.

Gradio calls `LoginGuard.check` for every login attempt (``auth=`` of ``launch``) without the
request, so `ClientAddress`, an ASGI middleware on the app (``app_kwargs`` of ``launch``), notes
each request's client address (``scope["client"]``, the TCP peer: a forwarded-for header is not
trusted) in a context variable the check reads. Attempts from one address are checked one at a
time; each wrong one holds that address's line for `fail_delay_s`, so one address guesses at
most one password per `fail_delay_s` however many requests it sends in parallel. After
`lockout_after` wrong attempts from an address within `window_s`, that address is refused for
`lockout_s`, the right password included; other addresses (the real user) are not slowed or
locked by it. Each failure and lockout is logged on stderr.

Behind a reverse proxy every request comes from the proxy's address, so all clients share one
line and one lockout (as before this was per address).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import sys
import time

UNKNOWN = "unknown"  # the address of a request whose client the server does not know
client_address: contextvars.ContextVar[str] = contextvars.ContextVar(
    "cofrida_client_address", default=UNKNOWN
)


class ClientAddress:
    """ASGI middleware: sets `client_address` to the request's client host (IP) while the
    request is handled. Pass as ``Middleware(ClientAddress)`` in the app's ``middleware``."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        client = scope.get("client") if scope.get("type") in ("http", "websocket") else None
        token = client_address.set(client[0] if client else UNKNOWN)
        try:
            await self.app(scope, receive, send)
        finally:
            client_address.reset(token)


class LoginGuard:
    """Pass ``guard.check`` as Gradio's ``auth``: ``await guard.check(user, password) -> bool``.

    Args:
        user, password: the one account.
        fail_delay_s: seconds each wrong attempt takes (s).
        lockout_after: wrong attempts from one address within `window_s` that lock it.
        window_s: the window failures are counted in (s).
        lockout_s: how long a locked address stays refused (s).
    """

    def __init__(
        self,
        user: str,
        password: str,
        fail_delay_s: float = 1.0,
        lockout_after: int = 10,
        window_s: float = 600.0,
        lockout_s: float = 300.0,
    ) -> None:
        self.user, self.password = user, password
        self.fail_delay_s, self.lockout_after = fail_delay_s, lockout_after
        self.window_s, self.lockout_s = window_s, lockout_s
        self.failures: dict[str, list[float]] = {}  # address -> monotonic times of wrong tries
        self.locked_until: dict[str, float] = {}  # address -> monotonic end of its lockout
        self._lines: dict[str, asyncio.Lock] = {}  # address -> its line (server's event loop)

    def locked(self, address: str | None = None) -> bool:
        """Whether logins from `address` are refused now (None: from any address)."""
        now = time.monotonic()
        if address is None:
            return any(now < t for t in self.locked_until.values())
        return now < self.locked_until.get(address, 0.0)

    def _forget_idle(self, now: float) -> None:
        """Drop the records of addresses with no recent failure, no lockout and no one in line
        (the tables stay as small as the set of recent guessers)."""
        for address in list(self._lines):
            line = self._lines[address]
            recent = [t for t in self.failures.get(address, []) if now - t < self.window_s]
            if not line.locked() and not recent and now >= self.locked_until.get(address, 0):
                del self._lines[address]
                self.failures.pop(address, None)
                self.locked_until.pop(address, None)

    async def check(self, user: str, password: str) -> bool:
        """Whether the login is right; slowed down and refused as the module says. (A bound
        coroutine method: Gradio awaits it only when `inspect.iscoroutinefunction` says so.)"""
        address = client_address.get()
        if len(self._lines) > 1000:
            self._forget_idle(time.monotonic())
        line = self._lines.setdefault(address, asyncio.Lock())
        async with line:
            now = time.monotonic()
            if self.locked(address):
                await asyncio.sleep(self.fail_delay_s)
                return False
            ok = hmac.compare_digest(user.encode(), self.user.encode())
            ok &= hmac.compare_digest(password.encode(), self.password.encode())
            if ok:
                self.failures.pop(address, None)
                return True
            recent = [t for t in self.failures.get(address, []) if now - t < self.window_s]
            self.failures[address] = [*recent, now]
            print(
                f"cofrida ui: wrong login for user {user!r} from {address}",
                file=sys.stderr,
                flush=True,
            )
            if len(self.failures[address]) >= self.lockout_after:
                self.locked_until[address] = now + self.lockout_s
                self.failures.pop(address, None)
                print(
                    f"cofrida ui: {self.lockout_after} wrong logins from {address}: logins from "
                    f"there are locked for {self.lockout_s:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            await asyncio.sleep(self.fail_delay_s)
            return False
