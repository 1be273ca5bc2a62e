"""The dispatcher: claims due messages from the outbox and hands them to their provider.

Why a message is never sent twice, even with several dispatchers and crashes (two phases):

1. Claim, and commit. One statement moves due messages from `queued` to `sending`, counts the
   attempt and sets a lease (`next_attempt_at` = now + lease). On PostgreSQL the inner SELECT
   takes `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers skip each other's rows; on SQLite
   the statement is a single write (SQLite serialises writers) and the `status = 'queued'`
   condition makes a row claimable once. Only the dispatcher whose UPDATE returned the id
   sends it.
2. Send, then record. The provider gets the message and its idempotency key; in the same
   transaction that marks the message `sent` we store the provider's id. A provider failure
   only touches the message row (attempts, last_error, next retry), never the request.

A dispatcher that dies between 1 and 2 leaves the message in `sending` with no provider id,
and we cannot know whether the provider took it (a send that timed out waiting for the answer
is in the same doubt, so it too stays in `sending` until its retry time). When the lease has
expired, recovery asks the provider (`find_accepted`: Twilio is searched by number, time and
exact body): if the provider has it, we record its id and mark it sent, without sending
again; if it has no trace, the message goes back to `queued`. The lease must be far longer
than one send (see config), so a slow dispatcher is never mistaken for a dead one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Select, case, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from models import Channel, Message, MessageStatus, utcnow
from models.message import HAS_PROVIDER_ID
from notifications.providers.base import (
    OutgoingMessage,
    PermanentFailure,
    Provider,
    ProviderResult,
    TemporaryFailure,
)

log = logging.getLogger(__name__)


class Uncertain(str):
    """The reason of a failure after which the provider may nonetheless have the message."""


# (message id, the provider's result or the reason it failed, whether the failure is final)
Outcome = tuple[int, ProviderResult | str, bool]

INTERRUPTED = "envoi non confirmé (dispatcher arrêté ou fournisseur muet) ; non reçu, renvoi"


@dataclass(frozen=True)
class DispatchPolicy:
    max_attempts: int = 6
    retry_after: timedelta = timedelta(seconds=60)  # doubled after each failed attempt
    max_retry_after: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)
    batch_size: int = 50
    concurrency: int = 8  # messages handed to providers at the same time, per process

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next attempt after `attempts` failed ones (exponential, capped)."""
        return min(self.retry_after * (2 ** max(attempts - 1, 0)), self.max_retry_after)


@dataclass
class DispatchReport:
    sent: int = 0
    rescheduled: int = 0
    failed: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)


class RateLimit:
    """At most `per_second` sends per provider (a moving window), counted in `storage_uri`.

    `memory://` counts in this process only; with `redis://...` (ORIENTATION_RATELIMIT_STORAGE_URL
    in production) every dispatcher process draws on the same allowance, so that two of them
    do not send twice the provider's rate.
    """

    KEY_PREFIX = "orientation-dispatch"

    def __init__(self, per_second: Mapping[str, int], storage_uri: str = "memory://") -> None:
        self._items = {name: RateLimitItemPerSecond(n) for name, n in per_second.items() if n > 0}
        storage = storage_from_string(storage_uri, wrap_exceptions=True)
        self._limiter = MovingWindowRateLimiter(storage)
        self._storage_down = False

    def try_send(self, provider: str) -> bool:
        """Count one send now if the window allows it; False (nothing counted) otherwise."""
        item = self._items.get(provider)
        if item is None:
            return True
        try:
            allowed = self._limiter.hit(item, self.KEY_PREFIX, provider)
        except StorageError as exc:
            # Redis down: send anyway rather than hold every message until it is back. The
            # provider answers a burst over its own limit with a temporary failure, which is
            # retried. Said once per outage, not once per message.
            if not self._storage_down:
                log.warning("sending rates not counted, their storage failed: %s", exc)
            self._storage_down = True
            return True
        self._storage_down = False
        return allowed

    def wait(self, provider: str) -> None:
        """Block until one send to this provider is allowed, and count it."""
        while not self.try_send(provider):
            try:
                stats = self._limiter.get_window_stats(
                    self._items[provider], self.KEY_PREFIX, provider
                )
            except StorageError:
                return  # the storage failed in between: send, as try_send does then
            time.sleep(max(stats.reset_time - time.time(), 0.005))


def _relaxed_commit(session: Session) -> None:
    """On PostgreSQL, do not wait for the disk when recording an outcome.

    Losing such a commit (only if the database server itself crashes) leaves the message in
    `sending` with its claim, which recovery settles by asking the provider: safe, and it
    spares one disk flush per message. The claim itself is always committed durably, since
    losing it would let a sent message be claimed again from `queued`.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _snapshot(message: Message) -> OutgoingMessage:
    return OutgoingMessage(
        id=message.id,
        channel=message.channel,
        recipient=message.recipient,
        subject=message.subject,
        body=message.body,
        idempotency_key=message.idempotency_key,
        created_at=message.created_at,
    )


class Dispatcher:
    """Sends what is due; safe to run in several processes at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        providers: Mapping[Channel, Provider],
        policy: DispatchPolicy | None = None,
        rate_limits: Mapping[str, int] | None = None,
        clock: Callable[[], datetime] = utcnow,
        rate_limit_storage: str = "memory://",
    ) -> None:
        self.sessions = sessions
        self.providers = dict(providers)
        self.policy = policy or DispatchPolicy()
        self.rate_limit = RateLimit(rate_limits or {}, rate_limit_storage)
        self.clock = clock

    def run_once(self) -> DispatchReport:
        """Recover abandoned messages, then send batches until nothing is due."""
        report = DispatchReport()
        self.recover(report)
        # Sends wait on the network, so a few run side by side; their outcomes are recorded
        # here as they come back, those that arrived together in one short transaction.
        with ThreadPoolExecutor(self.policy.concurrency, "send") as pool:
            while batch := self.claim():
                pending = {pool.submit(self._send, message) for message in batch}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self._record([future.result() for future in done], report)
        return report

    # Phase 1 -------------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[OutgoingMessage]:
        """Move up to `limit` due messages to `sending` under a lease; committed on return."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            due = (
                select(Message.id)
                .where(Message.status == MessageStatus.QUEUED, Message.next_attempt_at <= now)
                .order_by(Message.next_attempt_at, Message.id)
                .limit(limit or self.policy.batch_size)
            )
            ids = self._take(session, due, now, expected=MessageStatus.QUEUED, count=True)
            rows = session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
            return [_snapshot(message) for message in rows]

    def _take(
        self,
        session: Session,
        candidates: Select[int],
        now: datetime,
        *,
        expected: MessageStatus,
        count: bool,
    ) -> list[int]:
        """Move candidate rows to `sending`; the ids returned are this dispatcher's alone."""
        ids: Select[int] | list[int]
        if session.get_bind().dialect.name == "postgresql":
            # Lock the rows first and skip those another dispatcher holds. (Not as a subquery
            # of the UPDATE: PostgreSQL may run such a subquery more than once and exceed its
            # LIMIT.) The locks last until our commit.
            ids = list(session.scalars(candidates.with_for_update(skip_locked=True)))
        else:
            # SQLite: one UPDATE statement is one write transaction from the start, so there
            # is no read-then-upgrade race; `status = expected` makes each row claimable once.
            ids = candidates
        values: dict[str, object] = {
            "status": MessageStatus.SENDING,
            "next_attempt_at": now + self.policy.lease,
            "provider": case(
                (Message.channel == Channel.SMS, self.providers[Channel.SMS].name),
                else_=self.providers[Channel.EMAIL].name,
            ),
        }
        if count:
            values["attempts"] = Message.attempts + 1
        statement = (
            update(Message)
            .where(Message.id.in_(ids), Message.status == expected)
            .values(values)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
        return list(session.scalars(statement))

    # Phase 2 -------------------------------------------------------------------------------

    def _send(self, message: OutgoingMessage) -> Outcome:
        """Hand one message to its provider: (id, result or reason of failure, permanent)."""
        provider = self.providers[message.channel]
        self.rate_limit.wait(provider.name)
        try:
            return message.id, provider.send(message), False
        except PermanentFailure as exc:
            return message.id, str(exc), True
        except TemporaryFailure as exc:
            return message.id, Uncertain(str(exc)) if exc.uncertain else str(exc), False
        except Exception as exc:  # a bug in a provider must not stop the other messages
            log.exception("provider %s crashed on message %s", provider.name, message.id)
            return message.id, f"erreur inattendue : {type(exc).__name__}", False

    def _record(self, outcomes: list[Outcome], report: DispatchReport) -> None:
        """Record outcomes that came back together in one transaction (one disk flush)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            _relaxed_commit(session)
            rows = session.scalars(
                select(Message)
                .where(Message.id.in_([message_id for message_id, _, _ in outcomes]))
                .order_by(Message.id)  # the same lock order in every dispatcher
                .with_for_update()
            )
            messages = {message.id: message for message in rows}
            for message_id, outcome, permanent in outcomes:
                message = messages.get(message_id)
                if message is None:  # purged meanwhile (RGPD): nothing left to record
                    continue
                if isinstance(outcome, ProviderResult):
                    self._mark_sent(message, outcome, now)
                    report.sent += 1
                elif message.status is MessageStatus.SENDING:
                    self._mark_failed(message, outcome, permanent, now, report)

    def _mark_sent(self, message: Message, result: ProviderResult, now: datetime) -> None:
        if message.provider_message_id and message.provider_message_id != result.provider_id:
            log.error("message %s accepted twice by its provider", message.id)
        message.provider_message_id = result.provider_id
        # The delivery webhook may already have said delivered or failed: keep its word.
        if message.status in (MessageStatus.SENDING, MessageStatus.QUEUED):
            message.status = result.status
        message.sent_at = message.sent_at or now
        if result.status is MessageStatus.DELIVERED:
            message.delivered_at = message.delivered_at or now
        message.last_error = ""

    def _mark_failed(
        self, message: Message, reason: str, permanent: bool, now: datetime, report: DispatchReport
    ) -> None:
        message.last_error = reason[:500]
        if isinstance(reason, Uncertain):
            # Stay `sending` until the retry time: recovery then asks the provider whether it
            # took the message before anything is sent again (see the module docstring).
            message.next_attempt_at = now + self.policy.backoff(message.attempts)
            report.rescheduled += 1
        elif permanent or message.attempts >= self.policy.max_attempts:
            message.status = MessageStatus.FAILED
            report.failed += 1
        else:
            message.status = MessageStatus.QUEUED
            message.next_attempt_at = now + self.policy.backoff(message.attempts)
            report.rescheduled += 1
        report.errors.append(f"message {message.id}: {reason}")

    # Recovery ------------------------------------------------------------------------------

    def recover(self, report: DispatchReport) -> None:
        """Settle messages left in `sending` by a dispatcher that died (lease expired)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            expired = select(Message.id).where(
                Message.status == MessageStatus.SENDING, Message.next_attempt_at <= now
            )
            # Renewing the lease first means one dispatcher alone handles each abandoned message.
            ids = self._take(session, expired, now, expected=MessageStatus.SENDING, count=False)
            rows = session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
            abandoned = [_snapshot(message) for message in rows]
        for message in abandoned:
            provider = self.providers[message.channel]
            try:
                provider_id = provider.find_accepted(message, since=message.created_at)
            except TemporaryFailure as exc:
                report.errors.append(f"message {message.id}: {exc}")
                continue  # still `sending`: asked again when the renewed lease expires
            if provider_id is not None and not self._known(provider_id, message.id):
                self._record([(message.id, ProviderResult(provider_id), False)], report)
                report.sent -= 1  # recorded, not sent now
            else:
                self._record([(message.id, INTERRUPTED, False)], report)
                self._retry_now(message.id)
            report.recovered += 1

    def _known(self, provider_id: str, message_id: int) -> bool:
        """Whether another message already owns this provider id (two identical texts)."""
        with self.sessions() as session:
            owner = session.scalar(
                select(Message.id).where(
                    Message.provider_message_id == provider_id,
                    HAS_PROVIDER_ID,
                    Message.id != message_id,
                )
            )
            return owner is not None

    def _retry_now(self, message_id: int) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == MessageStatus.QUEUED)
                .values(next_attempt_at=self.clock())
                .execution_options(synchronize_session=False)
            )


def requeue(session: Session, message: Message, now: datetime) -> None:
    """A coordinator's retry of a failed message: queued again, due now, attempts from zero."""
    if message.status is not MessageStatus.FAILED:
        raise ValueError("only a failed message can be retried")
    message.status = MessageStatus.QUEUED
    message.attempts = 0
    message.next_attempt_at = now
