"""Property tests of the event codec over the whole catalogue (issue #16).

Strategies are built from each event's schema (`msgspec.inspect`), so a field added to the
catalogue is covered without touching this file.  Two properties:

- anything at all: `encode` either refuses it (`Unwritable`) or it reads back exactly;
- values dtf can write (finite, in range, valid text, a Literal's own values): `encode`
  accepts them and they read back exactly, so the check never refuses a good event.
"""

from __future__ import annotations

import math
import typing

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalogue import AnyEvent, Event, TaskQueued
from events.codec import Unwritable, decode, encode, read
from events.subjects import subject_of

EVENT_CLASSES: tuple[type[Event], ...] = typing.get_args(AnyEvent)
INT64 = (-(2**63), 2**63 - 1)
EXAMPLES = settings(
    max_examples=100,  # per class and property: ~5 s for the catalogue on a slow machine
    deadline=None,
    database=None,  # leave no .hypothesis/ folder in the work tree
    suppress_health_check=[HealthCheck.too_slow],
)

# Lone surrogates are rare among all code points; mixing them in makes them common enough.
ANY_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=12)
GOOD_TEXT = st.text(max_size=12)  # hypothesis leaves out surrogates by default


def values(info: mi.Type, *, writable: bool) -> st.SearchStrategy[object]:
    """Values of one schema type: anything of that Python type, or only writable ones."""
    match info:
        case mi.StrType():
            return GOOD_TEXT if writable else ANY_TEXT
        case mi.BoolType():
            return st.booleans()
        case mi.IntType():
            return st.integers(*INT64) if writable else st.integers()
        case mi.FloatType():
            return st.floats(allow_nan=not writable, allow_infinity=not writable)
        case mi.LiteralType(values=choices):
            known = st.sampled_from(choices)
            # Python lets any string into a Literal field; only its own values read back.
            return known if writable else st.one_of(known, ANY_TEXT)
        case mi.VarTupleType(item_type=item):
            return st.lists(values(item, writable=writable), max_size=3).map(tuple)
        case mi.DictType(key_type=key, value_type=value):
            return st.dictionaries(
                values(key, writable=writable), values(value, writable=writable), max_size=3
            )
        case mi.StructType():
            return structs(info, writable=writable)
        case mi.NoneType():
            return st.none()
        case mi.UnionType(types=types):
            return st.one_of(*(values(t, writable=writable) for t in types))
    raise TypeError(f"no strategy for {info!r}: extend tests/test_codec.py")


def structs(info: mi.StructType, *, writable: bool) -> st.SearchStrategy[object]:
    """Instances of a Struct; fields with a default are sometimes left to it."""
    required = {f.name: values(f.type, writable=writable) for f in info.fields if f.required}
    optional = {f.name: values(f.type, writable=writable) for f in info.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: info.cls(**kw))


def events(cls: type[Event], *, writable: bool) -> st.SearchStrategy[Event]:
    info = typing.cast(mi.StructType, mi.type_info(cls))
    return typing.cast(st.SearchStrategy[Event], structs(info, writable=writable))


def tag_of(cls: type[Event]) -> str:
    return str(cls.__struct_config__.tag)


def test_the_catalogue_union_holds_every_event_class() -> None:
    """An event missing from AnyEvent would be written but never decoded."""

    def leaves(cls: type) -> set[type]:  # the per-aggregate bases are never written
        below = cls.__subclasses__()
        return {leaf for sub in below for leaf in leaves(sub)} if below else {cls}

    assert leaves(Event) == set(EVENT_CLASSES)
    assert len({tag_of(c) for c in EVENT_CLASSES}) == len(EVENT_CLASSES)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=tag_of)
def test_encode_refuses_or_round_trips_anything(cls: type[Event]) -> None:
    @EXAMPLES
    @given(events(cls, writable=False))
    def check(event: Event) -> None:
        try:
            encoded = encode(event)  # type: ignore[arg-type]
        except Unwritable:
            return
        assert decode(encoded) == event
        assert read(subject_of(event), encoded) == event  # type: ignore[arg-type]

    check()


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=tag_of)
def test_writable_values_always_encode_and_round_trip(cls: type[Event]) -> None:
    @EXAMPLES
    @given(events(cls, writable=True))
    def check(event: Event) -> None:
        encoded = encode(event)  # type: ignore[arg-type]
        assert decode(encoded) == event
        assert read(subject_of(event), encoded) == event  # type: ignore[arg-type]

    check()


def queued(**fields: object) -> TaskQueued:
    common: dict[str, object] = {"task_id": "r1.0", "run_id": "r1", "kind": "pytest"}
    return TaskQueued(id="e1", at=1.0, actor="test", **{**common, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"timeout": math.inf},
        {"timeout": math.nan},
        {"kind": "bogus"},
        {"requirements": msgspec.structs.replace(queued().requirements, memory_gb=math.nan)},
        {"argv": ("\udcff",)},
    ],
    ids=["timeout-inf", "timeout-nan", "bad-literal", "nested-nan", "lone-surrogate"],
)
def test_encode_refuses_what_issue_16_wrote(fields: dict[str, object]) -> None:
    with pytest.raises(Unwritable):
        encode(queued(**fields))
