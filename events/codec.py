"""The one JSON encoder/decoder for events (JSON so `nats stream view` stays readable).

Two promises hold at this boundary, whoever calls it:

- `encode` never returns bytes that `decode` would refuse: JSON has no NaN or infinity (msgspec
  writes them as `null`, which no event field accepts), and a Literal field can be given any
  string in Python.  Such an event raises `Unwritable` before it is stored.
- `decode` and `read` turn every way a stored message can be unreadable (malformed bytes, the
  wrong schema, nesting deep enough to exhaust the recursion limit, an event filed under
  another aggregate's subject) into one error, `Undecodable`, with a one-line reason.  Readers
  then count the message for its subject's aggregate instead of stalling on it.
"""

from __future__ import annotations

import msgspec

from events.catalogue import AnyEvent
from events.subjects import subject_of

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)
REASON_CHARS = 300


class Undecodable(ValueError):
    """A stored message that is not a dtf event, or not the one its subject says."""


class Unwritable(ValueError):
    """An event dtf refuses to store because it could not read it back."""


def encode(event: AnyEvent) -> bytes:
    """The event as JSON; raises Unwritable when the result would not decode again.

    The check decodes what was just encoded (1-10 us, against ~300 us for the publish it
    precedes): cheaper than keeping a validator in step with every field of the catalogue.
    """
    try:
        data = _encoder.encode(event)
    except (TypeError, ValueError, OverflowError) as exc:  # lone surrogates, huge ints
        raise Unwritable(f"cannot encode {type(event).__name__}: {_line(exc)}") from None
    try:
        _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Unwritable(
            f"{type(event).__name__} would not read back ({_line(exc)});"
            " a value is not finite or out of range"
        ) from None
    return data


def decode(data: bytes) -> AnyEvent:
    """Decode one event; raises Undecodable (never anything else) on garbage."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError is a DecodeError
        raise Undecodable(_line(exc)) from None


def read(subject: str, data: bytes) -> AnyEvent:
    """Decode a message stored under `subject`; it must be the event that subject names.

    A decodable event under a foreign subject is refused too: applied to the aggregate it
    names, it would advance that aggregate's expected sequence past what the server counts
    for it, and every guarded write to it would fail from then on.
    """
    event = decode(data)
    if subject_of(event) != subject:
        raise Undecodable(f"a {event.__struct_config__.tag} event of {subject_of(event)}")
    return event


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:REASON_CHARS]
