"""The one JSON encoder/decoder for events (JSON so `nats stream view` stays readable)."""

from __future__ import annotations

import msgspec

from events.catalogue import AnyEvent

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: AnyEvent) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> AnyEvent:
    """Decode one event; raises msgspec.DecodeError/ValidationError on garbage."""
    return _decoder.decode(data)
