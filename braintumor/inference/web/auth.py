"""Who may use the page: users with salted password hashes, bearer tokens for scripts,
sessions that expire, per-user rate limits, and an append-only audit log.

The users file (``python -m braintumor app adduser USERS NAME``) holds one line per user or
token: ``name:scrypt:<salt hex>:<hash hex>`` (scrypt, n=2**14, r=8, p=1) or
``name:token:<sha256 hex of the token>``. No password or token is stored, and every
comparison is constant-time (``hmac.compare_digest``). A wrong name, password or token is one
answer, 401, whatever part was wrong, and counts toward the client's rate limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from braintumor.errors import UsageError

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt:<salt hex>:<hash hex>`` of ``password``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt:{salt.hex()}:{digest.hex()}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(path: Path, name: str, password: str | None = None) -> str | None:
    """Add (or replace) ``name`` in the users file: with ``password``, a login; without, a
    bearer token, which is returned (shown once, stored only as its hash)."""
    if not name or ":" in name or name != name.strip():
        raise UsageError(f"user name {name!r}: give a name without ':' or surrounding spaces.")
    token = None
    if password is None:
        token = secrets.token_urlsafe(32)
        line = f"{name}:token:{_token_hash(token)}"
    else:
        if len(password) < 8:
            raise UsageError("the password is too short: use at least 8 characters.")
        line = f"{name}:{hash_password(password)}"
    kept = []
    if path.is_file():
        kind = "token" if password is None else "scrypt"
        kept = [ln for ln in path.read_text().splitlines()
                if ln and not ln.startswith(f"{name}:{kind}:")]  # fmt: skip
    from braintumor.atomic import write_atomically

    write_atomically(path, "\n".join([*kept, line]) + "\n")
    os.chmod(path, 0o600)
    return token


@dataclass
class Users:
    """The users file, read once."""

    passwords: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token hash -> user

    @classmethod
    def read(cls, path: Path) -> Users:
        if not path.is_file():
            raise FileNotFoundError(f"users file '{path}' does not exist: make it with "
                                    "python -m braintumor app adduser FILE NAME.")  # fmt: skip
        users = cls()
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split(":")
            if len(parts) == 4 and parts[1] == "scrypt":
                users.passwords[parts[0]] = (bytes.fromhex(parts[2]), bytes.fromhex(parts[3]))
            elif len(parts) == 3 and parts[1] == "token":
                users.tokens[parts[2]] = parts[0]
            else:
                raise UsageError(f"users file '{path}', line {number}: not a user line "
                                 "(name:scrypt:salt:hash or name:token:hash).")  # fmt: skip
        if not users.passwords and not users.tokens:
            raise UsageError(f"users file '{path}' holds no user.")
        return users

    def check_password(self, name: str, password: str) -> bool:
        """Constant-time; an unknown name costs the same scrypt as a known one."""
        salt, expected = self.passwords.get(name, (b"\0" * 16, b"\0" * 32))
        digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
        return hmac.compare_digest(digest, expected) and name in self.passwords

    def user_of_token(self, token: str) -> str | None:
        wanted = _token_hash(token)
        found = None
        for stored, user in self.tokens.items():  # every entry compared: constant time
            if hmac.compare_digest(stored, wanted):
                found = user
        return found


class Sessions:
    """Random session ids -> (user, expiry); expired ones are forgotten."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def start(self, user: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._items[sid] = (user, time.monotonic() + self.seconds)
        return sid

    def user(self, sid: str | None) -> str | None:
        if not sid:
            return None
        with self._lock:
            found = self._items.get(sid)
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self._items[sid]
                return None
            return found[0]

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._items.pop(sid or "", None)


class RateLimit:
    """At most ``per_minute`` events per key in any 60 s window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            events = self._events[key]
            while events and events[0] < now - 60:
                events.popleft()
            if len(events) >= self.per_minute:
                return False
            events.append(now)
            return True


class AuditLog:
    """Append-only JSON lines: each record one ``write`` of a whole line to a file opened with
    ``O_APPEND`` (no record interleaves with another, or is left half-written by a crash
    mid-line beyond the kernel's own guarantees), then ``fsync``."""

    FIELDS = ("time", "user", "model", "study", "answer", "confidence", "seconds", "status")

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, **record: Any) -> None:
        unknown = set(record) - set(self.FIELDS)
        if unknown:  # nothing but these fields, never a tag of the upload
            raise ValueError(f"audit records hold only {self.FIELDS}; got {sorted(unknown)}")
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
