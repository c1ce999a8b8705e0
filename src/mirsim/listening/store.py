"""``answers.sqlite``: the listeners, trials and answers of one listening test.

One SQLite database per test, in WAL mode (readers do not block the writer), with
``synchronous=FULL`` so that an answer is on disk when its transaction commits, and a
``busy_timeout`` so that several connections (the server's request threads, an export) wait
for each other instead of failing. Each answer is one transaction, committed before the server
replies; ``UNIQUE (listener, trial)`` refuses a second answer to the same trial (a replayed
request). Listeners' tokens are random; only their SHA-256 is stored.

Schema version :data:`SCHEMA_VERSION` is in ``PRAGMA user_version``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirsim.errors import MirsimError

if TYPE_CHECKING:  # pragma: no cover
    from mirsim.listening.design import ListeningTest

__all__ = ["ANSWERS_FILE", "SCHEMA_VERSION", "AlreadyAnswered", "AnswerStore", "StoreError",
           "hash_token"]

ANSWERS_FILE = "answers.sqlite"
SCHEMA_VERSION = 1
#: Milliseconds a connection waits for another one's write lock.
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE listeners (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT UNIQUE,
    issued REAL
);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL
);
CREATE TABLE answers (
    id INTEGER PRIMARY KEY,
    listener_id INTEGER NOT NULL REFERENCES listeners (id),
    trial_id INTEGER NOT NULL REFERENCES trials (id),
    answer TEXT NOT NULL,
    answered REAL NOT NULL,
    UNIQUE (listener_id, trial_id)
);
"""


class StoreError(MirsimError):
    """An answer database that cannot be used."""


class AlreadyAnswered(StoreError):
    """The listener has already answered this trial."""


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored.

    Examples
    --------
    >>> hash_token("abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                         check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    return db


class AnswerStore:
    """One connection to a test's answer database.

    Examples
    --------
    >>> import tempfile
    >>> from mirsim.listening.design import design_test
    >>> t = design_test("triplets", list("abcd"), list("abcd"), n=2, listeners=["ann"])
    >>> store = AnswerStore.create(Path(tempfile.mkdtemp()) / ANSWERS_FILE, t)
    >>> token = store.issue_token("ann")
    >>> store.listener_of(token), store.listener_of("forged")
    ('ann', None)
    >>> store.add_answer("ann", 0, {"choice": "b", "confidence": 2})
    >>> store.answered("ann")
    [0]
    >>> store.add_answer("ann", 0, {"choice": "c", "confidence": 2})
    Traceback (most recent call last):
    ...
    mirsim.listening.store.AlreadyAnswered: ann has already answered trial 0
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no answer database")
        self.db = _connect(self.path)
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            self.db.close()
            raise StoreError(f"{self.path}: answer database of schema version {version} "
                             f"(this mirsim reads version {SCHEMA_VERSION})")

    @classmethod
    def create(cls, path: str | Path, test: ListeningTest) -> AnswerStore:
        """A new database for ``test`` (its listeners and trials)."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path}: already exists")
        db = _connect(path)
        db.executescript(_SCHEMA)
        db.execute("BEGIN")
        db.executemany("INSERT INTO listeners (name) VALUES (?)",
                       [(name,) for name in test.listeners])
        db.executemany("INSERT INTO trials (id, kind, spec) VALUES (?, ?, ?)",
                       [(i, test.kind, json.dumps(t)) for i, t in enumerate(test.trials)])
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
        db.close()
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- listeners --------------------------------------------------------------------------
    def listeners(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM listeners ORDER BY id")]

    def issue_token(self, listener: str) -> str:
        """A new random token for ``listener`` (its hash replaces the previous one's)."""
        token = secrets.token_urlsafe(24)
        cursor = self.db.execute("UPDATE listeners SET token_sha256 = ?, issued = ? "
                                 "WHERE name = ?", (hash_token(token), time.time(), listener))
        if cursor.rowcount != 1:
            raise StoreError(f"no listener '{listener}' in this test")
        return token

    def listener_of(self, token: str) -> str | None:
        """The listener whose token this is, or None."""
        row = self.db.execute("SELECT name FROM listeners WHERE token_sha256 = ?",
                              (hash_token(token),)).fetchone()
        return None if row is None else row[0]

    # -- answers ----------------------------------------------------------------------------
    def add_answer(self, listener: str, trial: int, answer: dict[str, Any]) -> None:
        """Store one answer, committed on return; :class:`AlreadyAnswered` for a second one."""
        try:
            cursor = self.db.execute(
                "INSERT INTO answers (listener_id, trial_id, answer, answered) "
                "SELECT id, ?, ?, ? FROM listeners WHERE name = ?",
                (int(trial), json.dumps(answer), time.time(), listener))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise AlreadyAnswered(f"{listener} has already answered trial {trial}") from None
            raise StoreError(f"no trial {trial} in this test") from None
        if cursor.rowcount != 1:
            raise StoreError(f"no listener '{listener}' in this test")

    def answered(self, listener: str) -> list[int]:
        """The trials ``listener`` has answered, in the order answered."""
        return [r[0] for r in self.db.execute(
            "SELECT trial_id FROM answers JOIN listeners ON listeners.id = listener_id "
            "WHERE name = ? ORDER BY answers.id", (listener,))]

    def answers(self) -> list[dict[str, Any]]:
        """Every answer: ``listener``, ``trial``, ``answer`` (dict), ``answered`` (epoch s)."""
        rows = self.db.execute(
            "SELECT name, trial_id, answer, answered FROM answers "
            "JOIN listeners ON listeners.id = listener_id ORDER BY answers.id")
        return [{"listener": name, "trial": trial, "answer": json.loads(answer),
                 "answered": when} for name, trial, answer, when in rows]
