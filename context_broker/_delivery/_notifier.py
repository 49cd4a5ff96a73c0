"""The notifier: claims due notifications from the queue and sends them, in each API process.

Woken at once by this process's sink, else every poll interval (records of other processes,
retries due). Claimed records wait in a queue per endpoint, each with a bounded number in
flight and a bounded backlog; an endpoint at its bound is left out of the next claims, so a
slow or dead endpoint delays no other. A record is deleted once each of its notifications
was delivered or given up, or put back holding those the endpoint may yet take, due later
(exponential backoff with full jitter). Before a notification is sent, its subscription is
read again (deleted, paused, expired: dropped; throttled: dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bson import ObjectId

from context_broker._cancel import cancel_and_wait
from context_broker._delivery._backoff import retry_delay
from context_broker._delivery._outcome import Outcome
from context_broker._delivery._periodic import PeriodicSweep
from context_broker._delivery._queue import Claim, NotificationQueue, Queued
from context_broker._delivery._status import DeliveryStatus
from context_broker._errors import NonexistentTenant
from context_broker._subscriptions._live import LiveSubscriptions
from context_broker._subscriptions._model import subscription_status
from context_broker._time import utc_now

Document = dict[str, Any]
log = logging.getLogger("context_broker.notifier")
PERIODIC_SWEEP_S = 0.5
"""How often the periodic subscriptions are looked at (their finest interval)."""


class Sender(Protocol):
    """One transport: sends a queued notification once and tells how it went."""

    async def send(self, record: Queued) -> Outcome: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True, frozen=True)
class NotifierOptions:
    poll_s: float = 0.25
    lease_s: float = 30.0
    timeout_s: float = 5.0
    retry_base_s: float = 1.0
    max_attempts: int = 6
    endpoint_in_flight: int = 4
    endpoint_backlog: int = 256
    batch: int = 256
    flush_s: float = 0.1
    status_s: float = 1.0
    """How often the delivery status is written: one update per subscription notified
    meanwhile, the store's costliest part of delivery when many subscriptions notify."""


@dataclass(slots=True)
class _Endpoint:
    """One endpoint's claimed records, oldest first, and how many are being sent."""

    backlog: deque[tuple[Queued, float]] = field(default_factory=deque)
    in_flight: int = 0

    def load(self) -> int:
        return len(self.backlog) + self.in_flight


@dataclass(slots=True)
class _Parcel:
    """A claimed record: how many of its notifications are not settled yet, and those to
    send again (with their due time); `attempted` if one of those failed an attempt, else
    they are only given back unsent."""

    unsettled: int = 0
    again: list[tuple[Queued, datetime]] = field(default_factory=list)
    attempted: bool = False


class Notifier:
    """Sends the queue's notifications; `start()` and `stop()` from the app's lifespan."""

    def __init__(
        self,
        live: LiveSubscriptions,
        queue: NotificationQueue,
        senders: Mapping[str, Sender],
        options: NotifierOptions,
        periodic: PeriodicSweep | None = None,
    ) -> None:
        self.queue = queue
        self.senders = dict(senders)  # by URI scheme
        self.options = options
        self.periodic = periodic
        # The subscriptions as the sink matches them: a deletion or a pause answers only
        # once every process sees it (`_live.py`), so nothing is sent after its answer.
        self.live = live
        self._endpoints: dict[str, _Endpoint] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._flush = asyncio.Event()
        self._parcels: dict[tuple[ObjectId, str], _Parcel] = {}
        self._done: list[Queued] = []
        self._retries: list[tuple[Queued, datetime]] = []
        self._returned: list[tuple[Queued, datetime]] = []
        self._status = DeliveryStatus()
        # Told each notification's outcome: delivered, retry or failed (for the metrics).
        self.on_settled: Callable[[str], None] | None = None
        self._last_sent: dict[str, datetime] = {}  # throttled subscriptions' last send
        self._tasks: list[asyncio.Task[None]] = []
        self._next_sweep = 0.0
        self._claim_now = False
        self._stopping = False
        self._token = uuid.uuid4().hex  # the claim of the records handed over by the sink
        self._handed: list[tuple[Queued, float]] = []

    def wake(self) -> None:
        """Claim at once (notifications were just queued, free for any notifier)."""
        self._claim_now = True
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claiming(), name="notifier"),
            asyncio.create_task(self._flushing(), name="notifier-flush"),
            asyncio.create_task(self._recording(), name="notifier-status"),
        ]

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Stop claiming, let sends under way finish, write their outcomes and give the
        unsent claims back: within about `timeout_s` in all."""
        self._stopping = True
        await cancel_and_wait(self._tasks[:1])
        unsent = [record for endpoint in self._endpoints.values() for record, _ in endpoint.backlog]
        for record, _ in self._handed:
            self._open(record)
            unsent.append(record)
        self._handed = []
        self._endpoints.clear()
        if self._sending:
            _, pending = await asyncio.wait(set(self._sending), timeout=timeout_s * 2 / 3)
            await cancel_and_wait(pending)
        await cancel_and_wait(self._tasks[1:])
        self._tasks = []
        now = utc_now()
        for record in unsent:  # back in the queue, due at once, without those delivered
            self._close(record, again=now)
        try:
            async with asyncio.timeout(timeout_s / 3):
                await self._write_outcomes()
                await self._write_status()
        except Exception:
            log.exception("the notifier could not write its last outcomes")
        for sender in {id(sender): sender for sender in self.senders.values()}.values():
            with contextlib.suppress(Exception):
                await sender.aclose()

    # -- claiming ---------------------------------------------------------------------

    async def _claiming(self) -> None:
        next_claim = 0.0  # when the queue is next read for what other processes left
        while True:
            self._wake.clear()
            full = False
            try:
                await self._dispatch_handed()
                if self._claim_now or time.monotonic() >= next_claim:
                    self._claim_now = False
                    full = await self._claim_round()
                    next_claim = time.monotonic() + self.options.poll_s
                if self.periodic is not None and time.monotonic() >= self._next_sweep:
                    self._next_sweep = time.monotonic() + PERIODIC_SWEEP_S
                    await self.periodic.sweep(utc_now())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the notifier failed a round; it tries again")
            if full:
                self._claim_now = True
                continue
            with contextlib.suppress(TimeoutError):
                wait_s = max(0.0, min(next_claim, self._next_sweep) - time.monotonic())
                await asyncio.wait_for(self._wake.wait(), wait_s)

    # -- records this process's writes queued, handed over without a claim round trip --

    def claim_for(self, endpoint: str) -> Claim | None:
        """The claim under which this process's sink queues a notification for `endpoint`
        and hands it over at once; None when the endpoint is at its bound or the notifier
        stops (then the record waits in the queue for any notifier)."""
        current = self._endpoints.get(endpoint)
        if (
            self._stopping
            or not self._tasks
            or (current is not None and current.load() >= self.options.endpoint_backlog)
        ):
            return None
        return Claim(self._token, utc_now() + timedelta(seconds=self.options.lease_s))

    def hand_over(self, records: Sequence[Queued]) -> None:
        """Records queued (durably) under this notifier's claim: sent by the next round."""
        held_until = time.monotonic() + self.options.lease_s
        self._handed.extend((record, held_until) for record in records)
        self._wake.set()

    async def _dispatch_handed(self) -> None:
        while self._handed:
            handed, self._handed = self._handed, []
            await self._dispatch([record for record, _ in handed], handed[0][1])

    async def _claim_round(self) -> bool:
        """Claim what is due for endpoints below their bound; True if the batch was full."""
        options = self.options
        busy = [
            uri
            for uri, endpoint in self._endpoints.items()
            if endpoint.load() >= options.endpoint_backlog
        ]
        claimed = await self.queue.claim(utc_now(), options.batch, options.lease_s, busy)
        if not claimed:
            return False
        await self._dispatch(claimed, time.monotonic() + options.lease_s)
        return len(claimed) >= options.batch

    async def _dispatch(self, claimed: Sequence[Queued], held_until: float) -> None:
        """Send claimed records, each in its endpoint's turn; drop those whose subscription
        is gone, paused, expired or throttled."""
        now = utc_now()
        dropped: list[Queued] = []
        by_tenant: dict[str | None, list[Queued]] = {}
        for record in claimed:
            self._open(record)
            by_tenant.setdefault(record.tenant, []).append(record)
        for tenant, records in by_tenant.items():
            try:
                index = await self.live.index_of(tenant)
            except NonexistentTenant:
                dropped += records
                continue
            for record in records:
                subscription = index.get(record.subscription_id)
                if (
                    subscription is None
                    or subscription_status(subscription, now) != "active"
                    or self._throttled(subscription, now)
                ):
                    dropped.append(record)
                    continue
                endpoint = self._endpoints.setdefault(record.endpoint, _Endpoint())
                endpoint.backlog.append((record, held_until))
                self._pump(record.endpoint, endpoint)
        for record in dropped:
            self._close(record)

    def _throttled(self, subscription: Document, now: datetime) -> bool:
        """Whether a notification now comes too soon after the last one (throttling); if
        not, it counts as the last one."""
        throttling = subscription.get("throttling")
        if not throttling:
            return False
        key = str(subscription["_id"])
        last = [self._last_sent.get(key), subscription.get("sent", {}).get("lastNotification")]
        known = [t for t in last if t is not None]
        if known and now - max(known) < timedelta(seconds=throttling):
            return True
        self._last_sent[key] = now
        if len(self._last_sent) > 100_000:
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < _DAY}
        return False

    # -- sending ----------------------------------------------------------------------

    def _pump(self, uri: str, endpoint: _Endpoint) -> None:
        """Start sends on the endpoint up to its bound."""
        options = self.options
        while (
            endpoint.in_flight < options.endpoint_in_flight
            and endpoint.backlog
            and not self._stopping  # the backlog is given back by `stop()`
        ):
            record, held_until = endpoint.backlog.popleft()
            if time.monotonic() > held_until - options.timeout_s - 1.0:
                # Its lease runs out: given back to be claimed again, not sent twice.
                self._close(record, again=utc_now())
                continue
            endpoint.in_flight += 1
            task = asyncio.create_task(self._send(uri, endpoint, record))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        if endpoint.load() == 0 and self._endpoints.get(uri) is endpoint:
            del self._endpoints[uri]

    async def _send(self, uri: str, endpoint: _Endpoint, record: Queued) -> None:
        try:
            sender = self.senders.get(uri.split(":", 1)[0].lower())
            if sender is None:
                outcome = Outcome("refused", "no notifier for this URI scheme")
            else:
                outcome = await sender.send(record)
        except asyncio.CancelledError:
            outcome = Outcome("retry", "the notifier stopped")
            raise
        except Exception as error:  # a sender's bug must not lose the record
            log.exception("sending a notification of %s failed", record.subscription_id)
            outcome = Outcome("retry", repr(error))
        finally:
            endpoint.in_flight -= 1
            self._settle(record, outcome)
            self._pump(uri, endpoint)

    def _settle(self, record: Queued, outcome: Outcome) -> None:
        now = utc_now()
        if outcome.verdict == "delivered":
            settled = "delivered"
            self._close(record)
            self._status.delivered(record.tenant, record.subscription_id, now)
        elif outcome.verdict == "retry" and record.attempts + 1 < self.options.max_attempts:
            settled = "retry"
            delay = retry_delay(record.attempts + 1, self.options.retry_base_s)
            self._close(record, again=now + timedelta(seconds=delay), attempted=True)
        else:
            settled = "failed"
            attempts = record.attempts + 1
            log.warning(
                "notification of subscription %s to %s given up after %d attempt%s: %s",
                record.subscription_id,
                record.endpoint,
                attempts,
                "" if attempts == 1 else "s",
                outcome.why,
            )
            self._close(record)
            self._status.failed(record.tenant, record.subscription_id, now)
        if self.on_settled is not None:
            self.on_settled(settled)

    # -- records: settled once all their notifications are ------------------------------

    def _open(self, record: Queued) -> None:
        """Count a claimed notification as unsettled in its record."""
        self._parcels.setdefault((record.id, record.claim), _Parcel()).unsettled += 1

    def _close(
        self, record: Queued, again: datetime | None = None, *, attempted: bool = False
    ) -> None:
        """Settle a notification: done, or to send again at `again`. The last one of its
        record decides the record's outcome: deleted, or put back with those to send again."""
        key = (record.id, record.claim)
        parcel = self._parcels[key]
        parcel.unsettled -= 1
        if again is not None:
            parcel.again.append((record, again))
            parcel.attempted = parcel.attempted or attempted
        if parcel.unsettled > 0:
            return
        del self._parcels[key]
        if not parcel.again:
            self._done.append(record)
        elif parcel.attempted:
            self._retries += parcel.again
        else:
            self._returned += parcel.again
        self._flush.set()

    # -- outcomes ---------------------------------------------------------------------

    async def _flushing(self) -> None:
        while True:
            await self._flush.wait()
            self._flush.clear()
            # Outcomes that come together are written together: one delete and one status
            # update per subscription for all of them.
            await asyncio.sleep(self.options.flush_s)
            try:
                await self._write_outcomes()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the notifier could not write outcomes; it tries again")
                await asyncio.sleep(self.options.poll_s)
                self._flush.set()

    async def _write_outcomes(self) -> None:
        done, self._done = self._done, []
        retries, self._retries = self._retries, []
        returned, self._returned = self._returned, []
        try:
            await self.queue.done(done)
            await self.queue.retry(retries)
            await self.queue.retry(returned, attempted=False)
        except BaseException:
            self._done[:0] = done
            self._retries[:0] = retries
            self._returned[:0] = returned
            raise

    async def _recording(self) -> None:
        # Apart from the queue's outcomes, so that a long status write never holds back
        # the deletes that keep delivered records from being claimed again.
        while True:
            await asyncio.sleep(self.options.status_s)
            try:
                await self._write_status()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the notifier could not write the delivery status")

    async def _write_status(self) -> None:
        if self._status:
            await self._status.flush(self.live.repository)


_DAY = timedelta(days=1)
