"""The scan's two queues (`to-clients-<scan_id>`, `from-clients-<scan_id>`) through oms-mqclient.

A thin layer so that the rest of the scanner speaks pydantic models, and so that broker quirks (RabbitMQ
heartbeats during long work, whole-second timeouts, queue clean-up) are handled in one place."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import mqclient
import pika
from pydantic import BaseModel

from .settings import BrokerSettings

LOG = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def to_clients_queue(scan_id: str) -> str:
    return f"to-clients-{scan_id}"


def from_clients_queue(scan_id: str) -> str:
    return f"from-clients-{scan_id}"


def make_queue(
    broker: BrokerSettings, name: str, *, prefetch: int = 1, timeout_s: float = 1.0
) -> mqclient.Queue:
    return mqclient.Queue(
        broker.broker_type,
        address=broker.broker_address,
        name=name,
        prefetch=prefetch,
        timeout=max(1, round(timeout_s)),
        auth_token=broker.broker_auth.get_secret_value(),
    )


class Publisher:
    def __init__(self, resource: Any) -> None:
        self._resource = resource

    async def send(self, message: BaseModel) -> None:
        await self._resource.send(message.model_dump(mode="json"))


@asynccontextmanager
async def open_publisher(broker: BrokerSettings, name: str) -> AsyncIterator[Publisher]:
    async with make_queue(broker, name).open_pub() as pub:
        yield Publisher(pub)


class Consumer:
    """Manual-ack consumer: `ack` only after the work (and its result message) is done."""

    def __init__(self, resource: Any) -> None:
        self._resource = resource

    async def messages(self) -> AsyncGenerator[Any, None]:
        """Messages until none arrives within the queue's timeout (call again to keep waiting)."""
        async for msg in self._resource.iter_messages():
            yield msg

    async def ack(self, msg: Any) -> None:
        await self._resource.ack(msg)

    async def nack(self, msg: Any) -> None:
        await self._resource.nack(msg)

    def service_connection(self) -> None:
        """Let the broker connection answer heartbeats during long work (pika's blocking connection only
        does so inside its own calls; ewms-pilot does the same)."""
        connection = getattr(getattr(self._resource, "_sub", None), "connection", None)
        if connection is not None and connection.is_open:
            connection.process_data_events(time_limit=0)


@asynccontextmanager
async def open_consumer(
    broker: BrokerSettings, name: str, *, prefetch: int = 1, timeout_s: float = 1.0
) -> AsyncIterator[Consumer]:
    queue = make_queue(broker, name, prefetch=prefetch, timeout_s=timeout_s)
    async with queue.open_sub_manual_acking() as sub:
        yield Consumer(sub)


def parse_model(model: type[M], data: Any) -> M:
    return model.model_validate(data)


def _pika_parameters(broker: BrokerSettings) -> pika.ConnectionParameters:
    address = broker.broker_address
    parsed = urllib.parse.urlparse(address if "://" in address else "//" + address)
    kwargs: dict[str, Any] = {"host": parsed.hostname or "localhost"}
    if parsed.port:
        kwargs["port"] = parsed.port
    if parsed.path.strip("/"):
        kwargs["virtual_host"] = parsed.path.strip("/")
    password = broker.broker_auth.get_secret_value() or parsed.password
    if password:
        kwargs["credentials"] = pika.PlainCredentials(parsed.username or "", password)
    return pika.ConnectionParameters(**kwargs)


def delete_queues(broker: BrokerSettings, names: list[str]) -> None:
    """Delete a finished scan's queues (RabbitMQ only; other brokers keep them until their own limits)."""
    if broker.broker_type != "rabbitmq":
        return
    connection = pika.BlockingConnection(_pika_parameters(broker))
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(queue=name)
    finally:
        connection.close()


def queue_depth(broker: BrokerSettings, name: str) -> int:
    """Messages ready in a RabbitMQ queue (passive declare; 0 if it does not exist)."""
    connection = pika.BlockingConnection(_pika_parameters(broker))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue=name, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        return int(ok.method.message_count)
    finally:
        connection.close()
