"""oms-mqclient's wire format, read defensively: zstd-compressed JSON `{"headers": {...}, "data": ...}`.

Writing uses mqclient's own `Message.serialize`, so any mqclient program reads ours. Reading does not use
mqclient's `Message.data`: it decompresses a whole body of any declared size into memory and raises on
anything malformed, and on the scan's queues a message comes from processes we do not control (a worker of
another version, a stray publisher, a crafted zstd bomb). `decode` bounds the decompressed size
(`broker_max_message_bytes`: it stops reading at the cap instead of trusting the frame's declared size)
and turns every way a body can be wrong into one exception, `Undecodable`, whose message is the reason
recorded with the dead letter."""

from __future__ import annotations

import functools
import json
from typing import Any

import zstandard
from mqclient.broker_client_interface import Message as MQMessage
from pydantic import BaseModel

#: zstd's smallest window (1 KiB); a frame asking for a larger window than the cap allows is refused
_MIN_WINDOW = 1 << 10
#: output read per step: a real message fits in one; reading `max_bytes` at once would allocate that much
_READ_SIZE = 1 << 16


class Undecodable(ValueError):
    """A body that is not zstd, too large decompressed, not JSON, or not mqclient's envelope."""


def encode(message: BaseModel) -> bytes:
    """A message in mqclient's wire format."""
    return bytes(MQMessage.serialize(message.model_dump(mode="json")))


def _window_limit(max_bytes: int) -> int:
    """The smallest power of two >= max_bytes: a larger window cannot be needed for a capped output."""
    return max(_MIN_WINDOW, 1 << (max_bytes - 1).bit_length())


@functools.cache
def _decompressor(max_bytes: int) -> zstandard.ZstdDecompressor:
    """One per cap (reused: making one costs more than decompressing a pixel's message)."""
    return zstandard.ZstdDecompressor(max_window_size=_window_limit(max_bytes))


def decompress(body: bytes, max_bytes: int) -> bytes:
    """Decompress every zstd frame of `body`, reading at most `max_bytes` + 1 bytes of output."""
    chunks: list[bytes] = []
    size = 0
    try:
        with _decompressor(max_bytes).stream_reader(body, read_across_frames=True) as reader:
            while size <= max_bytes:
                chunk = reader.read(min(_READ_SIZE, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except zstandard.ZstdError as e:
        raise Undecodable(f"not zstd: {e}") from e
    if size > max_bytes:
        raise Undecodable(f"larger than {max_bytes} bytes decompressed (broker_max_message_bytes)")
    if size == 0:
        raise Undecodable("not zstd: no data")
    return b"".join(chunks)


def decode(body: bytes, max_bytes: int) -> Any:
    """The `data` of a wire message (raises Undecodable)."""
    raw = decompress(body, max_bytes)
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise Undecodable(f"not JSON: {e}") from e
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise Undecodable('not the wire envelope {"headers", "data"}')
    return envelope["data"]
