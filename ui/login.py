"""The app's login check: slow to guess, locked after repeated failures.

Gradio calls `LoginGuard.check` for every login attempt (``auth=`` of ``launch``). Attempts are
checked one at a time; each wrong one holds the line for `fail_delay_s`, so guessing runs at
most one password per `fail_delay_s` however many requests are sent in parallel. After
`lockout_after` wrong attempts within `window_s` every login is refused for `lockout_s`, the
right password included (the person waits, or restarts the app). Each failure and lockout is
logged on stderr.
"""

from __future__ import annotations

import asyncio
import hmac
import sys
import time


class LoginGuard:
    """Pass ``guard.check`` as Gradio's ``auth``: ``await guard.check(user, password) -> bool``.

    Args:
        user, password: the one account.
        fail_delay_s: seconds each wrong attempt takes (s).
        lockout_after: wrong attempts within `window_s` that lock logins.
        window_s: the window failures are counted in (s).
        lockout_s: how long logins stay locked (s).
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
        self.failures: list[float] = []  # monotonic times of recent wrong attempts
        self.locked_until = 0.0
        self._line: asyncio.Lock | None = None  # made in the server's event loop

    def locked(self) -> bool:
        """Whether logins are refused now."""
        return time.monotonic() < self.locked_until

    async def check(self, user: str, password: str) -> bool:
        """Whether the login is right; slowed down and refused as the module says. (A bound
        coroutine method: Gradio awaits it only when `inspect.iscoroutinefunction` says so.)"""
        if self._line is None:
            self._line = asyncio.Lock()
        async with self._line:
            now = time.monotonic()
            if self.locked():
                await asyncio.sleep(self.fail_delay_s)
                return False
            ok = hmac.compare_digest(user.encode(), self.user.encode())
            ok &= hmac.compare_digest(password.encode(), self.password.encode())
            if ok:
                self.failures.clear()
                return True
            self.failures = [t for t in self.failures if now - t < self.window_s] + [now]
            print(f"cofrida ui: wrong login for user {user!r}", file=sys.stderr, flush=True)
            if len(self.failures) >= self.lockout_after:
                self.locked_until = now + self.lockout_s
                self.failures.clear()
                print(
                    f"cofrida ui: {self.lockout_after} wrong logins: logins are locked for "
                    f"{self.lockout_s:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            await asyncio.sleep(self.fail_delay_s)
            return False
