"""The scan's two queues (`to-clients-<scan_id>`, `from-clients-<scan_id>`).

Messages use oms-mqclient's wire format (zstd-compressed JSON `{"headers", "data"}`, made by mqclient's own
`Message.serialize`) on durable quorum queues, so any mqclient program can talk to ours. For RabbitMQ we talk
AMQP through aio-pika: mqclient's RabbitMQ client blocks the event loop, waits for a broker confirm per message,
and its multi-channel consumer adds up to two whole-second waits whenever a queue is momentarily empty — which
on a scan's bursty traffic cost more time than the reconstructions (see README, "Message broker"). Other
broker types (NATS, Pulsar) go through mqclient's `Queue` unchanged.

A broker that goes away (restart, failover) costs nothing: connections are aio-pika's robust ones, which
reconnect and restore their channels (consumers re-subscribe themselves, see `_AmqpConsumer`); a publish
retries until the broker confirms it
(up to `broker_outage_timeout_s`); an ack that cannot reach the broker is dropped, since the broker
redelivers every unacknowledged message (the server ignores the duplicate result that may follow).

A consumer never raises on what it receives: a body that cannot be decoded (`wire.decode`) is delivered
as a `Received` with `error` set, so that its reader can dead-letter it (`deadletters.dead_letter`) and ack it."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika
import aiormq.exceptions
import mqclient
from pamqp import commands as amqp_commands
from pydantic import BaseModel

from skyscan_contract.settings import BrokerSettings

from .wire import Undecodable, decode, encode

LOG = logging.getLogger(__name__)

#: publishes in flight at once when sending many messages (pipelined publisher confirms)
PUBLISH_WINDOW = 500
#: what a broker that went away raises (a refused publish, DeliveryError, is retried the same way)
BROKER_AWAY = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)
#: seconds between attempts while the broker is away; the robust connection reconnects at this interval too
RECONNECT_INTERVAL_S = 1.0


class BrokerUnavailable(Exception):
    """The broker stayed away longer than `broker_outage_timeout_s`."""


class QueueGone(Exception):
    """A consumed queue no longer exists (deleted: for a worker, the scan ended)."""


@dataclass
class Received:
    """A delivered message: its decoded `data` (None if `error` says why it could not be decoded), the
    queue it came from, its raw body and AMQP headers (for dead-lettering), and the broker handle used to
    ack it."""

    data: Any
    handle: Any
    queue: str = ""
    body: bytes = b""
    error: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)


class Publisher(Protocol):
    async def send(self, message: BaseModel) -> None: ...

    async def send_many(self, messages: list[BaseModel]) -> None: ...

    async def send_raw(self, body: bytes, headers: dict[str, Any]) -> None:
        """Publish a body as it is, with AMQP headers (dead letters: a copy of what came in)."""
        ...


class Consumer(Protocol):
    def messages(self) -> AsyncGenerator[Received, None]:
        """Messages until none arrives within the consumer's timeout (call again to keep waiting)."""
        ...

    async def ack(self, msg: Received) -> None: ...

    async def ack_all(self, msgs: list[Received]) -> None:
        """Acknowledge several delivered messages (one frame where the broker allows it)."""
        ...

    def has_buffered(self) -> bool:
        """Whether more messages are already delivered and waiting (so acks can be batched)."""
        ...

    async def queue_exists(self) -> bool:
        """Whether the queue is still there (a finished scan's server deletes its queues)."""
        ...

    async def nack(self, msg: Received) -> None: ...


def _received(body: bytes, handle: Any, queue: str, max_bytes: int, headers: Any) -> Received:
    try:
        data, error = decode(body, max_bytes), None
    except Undecodable as e:
        data, error = None, str(e)
    return Received(data, handle, queue, body, error, dict(headers or {}))


def _amqp_url(broker: BrokerSettings) -> str:
    address = broker.broker_address
    parsed = urllib.parse.urlparse(address if "://" in address else "//" + address)
    user = parsed.username or ("" if broker.broker_auth.get_secret_value() else "guest")
    password = (
        broker.broker_auth.get_secret_value()
        or parsed.password
        or ("guest" if user == "guest" else "")
    )
    host = parsed.hostname or "localhost"
    port = parsed.port or 5672
    vhost = urllib.parse.quote(parsed.path.strip("/"), safe="")
    creds = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@"
    return f"amqp://{creds}{host}:{port}/{vhost}?heartbeat={broker.broker_heartbeat_s}"


async def _declare(
    channel: aio_pika.abc.AbstractRobustChannel, name: str, *, robust: bool = True
) -> aio_pika.abc.AbstractRobustQueue:
    """Declare (create if missing) exactly as mqclient declares it, so both can use the same queue."""
    return await channel.declare_queue(
        name, durable=True, arguments={"x-queue-type": "quorum"}, robust=robust
    )


# -- RabbitMQ through aio-pika ------------------------------------------------------------------
class _AmqpPublisher:
    def __init__(self, channel: aio_pika.abc.AbstractChannel, name: str, outage_s: float) -> None:
        self.channel = channel
        self.name = name
        self.outage_s = outage_s

    async def _publish(self, body: bytes, headers: dict[str, Any] | None = None) -> None:
        """Publish and wait for the broker's confirm, retrying while the broker is away."""
        give_up_at: float | None = None
        while True:
            try:
                await self.channel.default_exchange.publish(
                    aio_pika.Message(
                        body, headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    ),
                    routing_key=self.name,
                )
                if give_up_at is not None:
                    LOG.info("published to %s again: the broker is back", self.name)
                return
            except BROKER_AWAY as e:
                now = asyncio.get_running_loop().time()
                if give_up_at is None:
                    give_up_at = now + self.outage_s
                    LOG.warning("publish to %s failed (%r); retrying", self.name, e)
                if now > give_up_at:
                    raise BrokerUnavailable(
                        f"the broker did not take a message for {self.outage_s:g}s: {e!r}"
                    ) from e
                await asyncio.sleep(RECONNECT_INTERVAL_S)

    async def send(self, message: BaseModel) -> None:
        await self._publish(encode(message))

    async def send_many(self, messages: list[BaseModel]) -> None:
        """Publish with up to PUBLISH_WINDOW confirms outstanding; returns when all are confirmed."""
        for start in range(0, len(messages), PUBLISH_WINDOW):
            chunk = messages[start : start + PUBLISH_WINDOW]
            await asyncio.gather(*(self._publish(encode(m)) for m in chunk))

    async def send_raw(self, body: bytes, headers: dict[str, Any]) -> None:
        await self._publish(body, headers)


class _AmqpConsumer:
    """Consumes one or more queues on one channel, into one inbox, in delivery order.

    Its subscriptions are not aio-pika's "robust" ones: those re-declare a queue and re-subscribe whenever
    the broker cancels the consumer — also when the queue was deleted because the scan ended, which
    brought the queue back, empty, and hid the end from the workers. Instead, whenever a subscription
    ends without being asked to (the broker's basic.cancel: queue deleted, quorum leader moved, ...; or
    a reconnect after a broker restart) the consumer re-subscribes if the queue still exists, and
    otherwise `messages()` raises `QueueGone` (a worker exits: its scan ended; the server exits to be
    restarted, and the restarted server declares its queues again)."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        channel: aio_pika.abc.AbstractRobustChannel,
        names: list[str],
        timeout_s: float,
        max_bytes: int,
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.names = names
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        #: (queue, message); None once a queue is gone
        self._inbox: asyncio.Queue[tuple[str, aio_pika.abc.AbstractIncomingMessage] | None] = (
            asyncio.Queue()
        )
        self._queues: dict[str, aio_pika.abc.AbstractRobustQueue] = {}
        self._tags: dict[str, str] = {}
        self._gone: str | None = None
        self._watched: set[int] = set()  # underlying channels whose cancels we hear
        self._resubscribing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for name in self.names:
            # declared, not only looked up: a worker may start before the server has declared the queue
            queue = await _declare(self.channel, name, robust=False)
            await self._subscribe(name, queue)
        self.connection.reconnect_callbacks.add(self._on_reconnect)

    async def _subscribe(self, name: str, queue: aio_pika.abc.AbstractRobustQueue) -> None:
        await self._watch_cancels()

        async def deliver(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await self._inbox.put((name, message))

        self._queues[name] = queue
        self._tags[name] = await queue.consume(deliver, robust=False)

    async def _watch_cancels(self) -> None:
        """Hear the broker's basic.cancel on the channel in use (a new one after each reconnect)."""
        underlay = await self.channel.get_underlay_channel()
        if id(underlay) not in self._watched:
            self._watched.add(id(underlay))
            underlay.on_consumer_cancel_callbacks.add(self._on_cancel)

    def _spawn(self, name: str, why: str) -> None:
        task = asyncio.create_task(self._resubscribe(name, why))
        self._resubscribing.add(task)
        task.add_done_callback(self._resubscribing.discard)

    async def _on_cancel(self, frame: amqp_commands.Basic.Cancel) -> None:
        for name, tag in list(self._tags.items()):
            if tag == frame.consumer_tag:
                del self._tags[name]
                LOG.warning("the broker cancelled the subscription to %s", name)
                self._spawn(name, "the broker cancelled it")

    def _on_reconnect(self, _connection: object) -> None:
        self._tags.clear()  # the old channel's subscriptions died with it
        for name in self.names:
            self._spawn(name, "a reconnect")

    async def _resubscribe(self, name: str, why: str) -> None:
        try:
            if not await self._exists(name):
                LOG.info("%s is gone (%s): not subscribing again", name, why)
                self._gone = name
                self._inbox.put_nowait(None)
                return
            queue = await self.channel.declare_queue(name, passive=True, robust=False)
            await self._subscribe(name, queue)
            LOG.info("subscribed to %s again after %s", name, why)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            self._gone = name  # deleted between the check and the subscription
            self._inbox.put_nowait(None)
        except BROKER_AWAY as e:  # the next reconnect tries again
            LOG.warning("could not subscribe to %s again: %r", name, e)

    async def cancel(self) -> None:
        self.connection.reconnect_callbacks.discard(self._on_reconnect)
        for task in list(self._resubscribing):
            task.cancel()
        for name, tag in list(self._tags.items()):
            try:
                await self._queues[name].cancel(tag)
            except BROKER_AWAY:
                pass  # the queue or the connection is gone: so is the subscription
        self._tags.clear()

    async def messages(self) -> AsyncGenerator[Received, None]:
        while True:
            try:
                item = await asyncio.wait_for(self._inbox.get(), self.timeout_s)
            except TimeoutError:
                return
            if item is None:
                self._inbox.put_nowait(None)  # stays gone for the next call too
                raise QueueGone(f"queue {self._gone} no longer exists")
            name, raw = item
            yield _received(raw.body, raw, name, self.max_bytes, raw.headers)

    async def ack(self, msg: Received) -> None:
        await self._settle(msg.handle.ack())

    async def ack_all(self, msgs: list[Received]) -> None:
        if msgs:  # delivery tags grow on a channel: acking the last with `multiple` acks all
            await self._settle(msgs[-1].handle.ack(multiple=True))

    @staticmethod
    async def _settle(call: Awaitable[None]) -> None:
        """Ack/nack; if the broker went away meanwhile, it redelivers the message, so dropping is right."""
        try:
            await call
        except BROKER_AWAY as e:
            LOG.warning("could not settle a message (%r); the broker will redeliver it", e)

    def has_buffered(self) -> bool:
        return not self._inbox.empty()

    async def queue_exists(self) -> bool:
        return all([await self._exists(name) for name in self.names])

    async def _exists(self, name: str) -> bool:
        """Whether the queue exists, asked on a channel of its own (a 404 closes the channel)."""
        try:
            channel = await self.connection.channel()
        except BROKER_AWAY:
            return True  # cannot tell while the broker is away
        try:
            await channel.declare_queue(name, passive=True, robust=False)
            return True
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False  # 404 NOT_FOUND (it also closes the channel)
        except BROKER_AWAY:
            return True
        finally:
            if not channel.is_closed:
                await channel.close()

    async def nack(self, msg: Received) -> None:
        await self._settle(msg.handle.nack(requeue=True))


# -- other brokers through mqclient ---------------------------------------------------------------
def _mq_queue(broker: BrokerSettings, name: str, prefetch: int, timeout_s: float) -> mqclient.Queue:
    return mqclient.Queue(
        broker.broker_type,
        address=broker.broker_address,
        name=name,
        prefetch=prefetch,
        timeout=max(1, round(timeout_s)),
        auth_token=broker.broker_auth.get_secret_value(),
    )


class _MQPublisher:
    def __init__(self, resource: Any) -> None:
        self._resource = resource

    async def send(self, message: BaseModel) -> None:
        await self._resource.send(message.model_dump(mode="json"))

    async def send_many(self, messages: list[BaseModel]) -> None:
        for m in messages:
            await self.send(m)

    async def send_raw(self, body: bytes, headers: dict[str, Any]) -> None:
        # mqclient publishes JSON data only: a dead letter is logged, not copied
        LOG.error("dead letter not kept (only RabbitMQ keeps dead letters): %s", headers)


class _MQConsumer:
    def __init__(self, resource: Any, name: str, max_bytes: int) -> None:
        self._resource = resource
        self.name = name
        self.max_bytes = max_bytes

    async def messages(self) -> AsyncGenerator[Received, None]:
        async for msg in self._resource.iter_messages():
            yield _received(bytes(msg.payload), msg, self.name, self.max_bytes, {})

    async def ack(self, msg: Received) -> None:
        await self._resource.ack(msg.handle)

    async def ack_all(self, msgs: list[Received]) -> None:
        for msg in msgs:
            await self.ack(msg)

    def has_buffered(self) -> bool:
        return False

    async def queue_exists(self) -> bool:
        return True  # not knowable through mqclient; workers rely on their idle timeout

    async def nack(self, msg: Received) -> None:
        await self._resource.nack(msg.handle)


# -- opening ----------------------------------------------------------------------------------
async def _connect(broker: BrokerSettings) -> aio_pika.abc.AbstractRobustConnection:
    return await aio_pika.connect_robust(_amqp_url(broker), reconnect_interval=RECONNECT_INTERVAL_S)


@asynccontextmanager
async def open_publisher(broker: BrokerSettings, name: str) -> AsyncIterator[Publisher]:
    if broker.broker_type == "rabbitmq":
        connection = await _connect(broker)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await _declare(channel, name)
            yield _AmqpPublisher(channel, name, broker.broker_outage_timeout_s)
    else:
        async with _mq_queue(broker, name, 1, 1).open_pub() as pub:
            yield _MQPublisher(pub)


@asynccontextmanager
async def open_consumer(
    broker: BrokerSettings,
    name: str,
    *,
    also: Sequence[str] = (),
    prefetch: int = 1,
    timeout_s: float = 1.0,
) -> AsyncIterator[Consumer]:
    """Consume `name` (and the queues `also`, into the same stream: RabbitMQ only)."""
    max_bytes = broker.broker_max_message_bytes
    if broker.broker_type == "rabbitmq":
        connection = await _connect(broker)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            consumer = _AmqpConsumer(connection, channel, [name, *also], timeout_s, max_bytes)
            await consumer.start()
            try:
                yield consumer
            finally:
                await consumer.cancel()
    else:
        if also:
            LOG.warning("%s: only RabbitMQ consumes several queues; not consuming %s", name, also)
        async with _mq_queue(broker, name, prefetch, timeout_s).open_sub_manual_acking() as sub:
            yield _MQConsumer(sub, name, max_bytes)


async def delete_queues(broker: BrokerSettings, names: list[str]) -> None:
    """Delete a finished scan's queues (RabbitMQ; other brokers keep them until their own limits)."""
    if broker.broker_type != "rabbitmq":
        return
    connection = await aio_pika.connect(_amqp_url(broker))
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


async def queue_depth(broker: BrokerSettings, name: str) -> int | None:
    """Messages ready in a RabbitMQ queue; None if there is no such queue."""
    info = await queue_info(broker, name)
    return None if info is None else info[0]


async def queue_info(broker: BrokerSettings, name: str) -> tuple[int, int] | None:
    """(messages ready, consumers) of a RabbitMQ queue; None if there is no such queue. (A quorum
    queue's unacknowledged messages are not counted here; a consumer's death makes them ready again.)"""
    connection = await aio_pika.connect(_amqp_url(broker))
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        declared = queue.declaration_result
        return int(declared.message_count or 0), int(declared.consumer_count or 0)
