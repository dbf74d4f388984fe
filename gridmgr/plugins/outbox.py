"""The outbox: outgoing messages written in the caller's transaction and delivered by the job worker.

`put(conn, channel, payload)` adds a message and queues its delivery on the same connection: both
commit with the caller's work or neither does. Each attempt that fails waits before the next, FIRST_WAIT_S
doubling up to MAX_WAIT_S; after ATTEMPTS failures the message is given up (`given_up_at`, with its
`last_error`). A message's delivery run queues its own next attempt, so one chain of runs follows each
message; the hourly `outbox` job sweeps up whatever is due and has no run queued (a message inserted by
hand, a queue emptied).

A channel is a callable a plug-in gives (`gridmgr_outbox_channels`) that sends one payload or raises;
"webhook" is built in. Delivery is at least once: a worker stopped between sending and committing sends
again, so a receiver that must not see a message twice keeps a key of the producer's in the payload.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.codes import TZ
from gridmgr.config import Config
from gridmgr.db.models import Base
from gridmgr.plugins import hooks, worker
from gridmgr.plugins.hooks import Job, hookimpl

JOB = "outbox"
ATTEMPTS = 8  # 30 s, 1, 2, 4, 8, 16, 32 min apart: given up about an hour after the first failure
FIRST_WAIT_S, MAX_WAIT_S = 30, 6 * 3600
BATCH = 50  # messages one sweep tries, so that its transaction stays short; another sweep follows at once
ERROR_CHARS = 1000
WEBHOOK_TIMEOUT_S = 10
WEBHOOK_URL = "GRIDMGR_WEBHOOK_URL"  # the webhook channel's endpoint when a payload names none

Channel = Callable[[dict[str, Any]], None]


class OutboxMessage(Base):
    """One outgoing message: its channel and payload, and how its delivery went."""

    __tablename__ = "outbox"
    __table_args__ = (
        # sent and given up exclude each other
        CheckConstraint("sent_at IS NULL OR given_up_at IS NULL", name="sent_or_given_up"),
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("sent_at IS NULL AND given_up_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    given_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


def channels() -> dict[str, Channel]:
    """Every plug-in's delivery channels by name; a name given twice is a ValueError."""
    found: dict[str, Channel] = {}
    for given in hooks.manager().hook.gridmgr_outbox_channels():
        for name, send in (given or {}).items():
            if name in found:
                raise ValueError(f"outbox channel {name!r} is given twice")
            found[name] = send
    return found


def put(conn: Connection, channel: str, payload: dict[str, Any]) -> int:
    """Add a message to the outbox and queue its delivery, both in the caller's transaction; returns its id."""
    hooks.chosen(channels(), [channel], "outbox channel")
    message_id: int = conn.execute(
        text("INSERT INTO outbox (channel, payload) VALUES (:c, CAST(:p AS jsonb)) RETURNING id"),
        {"c": channel, "p": json.dumps(payload, ensure_ascii=False)},
    ).scalar_one()
    worker.enqueue(conn, JOB, message_id=message_id)
    return message_id


def backoff(attempts: int) -> timedelta:
    """The wait after a message's n-th failed attempt: FIRST_WAIT_S, doubling each time, at most MAX_WAIT_S."""
    return timedelta(seconds=min(FIRST_WAIT_S * 2 ** max(attempts - 1, 0), MAX_WAIT_S))


_PENDING = "sent_at IS NULL AND given_up_at IS NULL"


def deliver(conn: Connection, now: datetime, message_id: int | None = None) -> str:
    """Try the messages due (or the one named): each is sent, left for a later attempt, or given up; a summary."""
    if message_id is None:
        # a sweep skips the messages a delivery run holds; that run decides about them
        rows = conn.execute(
            text(
                f"SELECT id, channel, payload, attempts FROM outbox WHERE {_PENDING} AND next_attempt_at <= :now "
                "ORDER BY next_attempt_at, id LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"now": now, "n": BATCH},
        ).all()
    else:
        # a message's own run waits for a sweep holding it, then sees what the sweep did
        row = conn.execute(
            text(
                f"SELECT id, channel, payload, attempts, next_attempt_at FROM outbox WHERE id = :id AND {_PENDING} FOR UPDATE"
            ),
            {"id": message_id},
        ).one_or_none()
        if row is None:
            return f"message {message_id} was sent or given up already"
        if row.next_attempt_at > now:  # a sweep tried it in between: its chain goes on from there
            worker.enqueue(conn, JOB, at=row.next_attempt_at, message_id=message_id)
            return f"message {message_id} is due at {row.next_attempt_at.astimezone(TZ):%Y-%m-%d %H:%M:%S}"
        rows = [row]
    known = channels()
    sent = retried = given_up = 0
    for row in rows:
        attempts = row.attempts + 1
        try:
            if row.channel not in known:
                raise LookupError(f"no outbox channel {row.channel!r} (known: {', '.join(known)})")
            known[row.channel](row.payload)
        except Exception as exc:  # whatever a channel raises is that attempt's failure, kept in last_error
            error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
            if attempts >= ATTEMPTS:
                given_up += 1
                conn.execute(
                    text("UPDATE outbox SET attempts = :a, last_error = :e, given_up_at = :now WHERE id = :id"),
                    {"a": attempts, "e": error, "now": now, "id": row.id},
                )
                continue
            retried += 1
            later = now + backoff(attempts)
            conn.execute(
                text("UPDATE outbox SET attempts = :a, last_error = :e, next_attempt_at = :t WHERE id = :id"),
                {"a": attempts, "e": error, "t": later, "id": row.id},
            )
            if message_id is not None:
                worker.enqueue(conn, JOB, at=later, message_id=message_id)
            continue
        sent += 1
        conn.execute(
            text("UPDATE outbox SET attempts = :a, sent_at = :now WHERE id = :id"),
            {"a": attempts, "now": now, "id": row.id},
        )
    if message_id is None and len(rows) == BATCH:
        worker.enqueue(conn, JOB)  # more may be due: the next sweep runs as soon as this one commits
    return f"{sent} sent, {retried} to retry, {given_up} given up"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would repeat a redirected POST as a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def webhook(payload: dict[str, Any]) -> None:
    """POST the payload, less its "url", as JSON to that URL (else GRIDMGR_WEBHOOK_URL); anything but 2xx raises."""
    url = payload.get("url") or Config.from_env().get(WEBHOOK_URL)
    if not url:
        raise ValueError(f"the payload names no url and {WEBHOOK_URL} is not set")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"a webhook is an http or https URL, not {url!r}")
    body = json.dumps({k: v for k, v in payload.items() if k != "url"}, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "gridmgr-outbox"},
    )
    try:
        with _OPENER.open(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            response.read(64 * 1024)
    except urllib.error.HTTPError as exc:  # 4xx and 5xx, and 3xx once redirects are refused
        exc.close()  # the error holds the response open
        raise


@hookimpl
def gridmgr_outbox_channels() -> dict[str, Channel]:
    """The built-in channel."""
    return {"webhook": webhook}


@hookimpl
def gridmgr_jobs() -> list[Job]:
    """Delivery: each message's own runs, queued by `put`, and an hourly sweep of what is due."""
    return [Job(JOB, "发件箱投递", "outbox delivery", "hourly", deliver)]
