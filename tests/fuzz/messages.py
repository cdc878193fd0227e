"""Hypothesis strategies for any request message of the contracts, built from its descriptor.

Every field gets values a careless or hostile caller could send: for strings NUL and control
characters, a trailing newline, other scripts' digits, 10,000 characters; for decimals NaN,
"1e999999", "1e-16384", "١٢٣"; for timestamps the year 9999, year 0, nanos -1 and 1e9; for
enums values the contract does not define; for integers the edges of their type. Fields whose
name says what they hold (a slug, an instrument, an account, a price) are mostly given a
plausible value, so that a request often gets past its first check and reaches the deeper
ones; one field in ten is hostile. New RPCs and fields are covered without a change here.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

F = FieldDescriptor

HOSTILE_SAMPLES = [
    "", "\x00", "ok_slug\n", "ma_cross\x00", "١٢٣", "𝟙", "1e999999", "1e-16384", "1e-999999", "NaN", "-Infinity",
    "sNaN", "-1", "0", "1_000", " 1", "\u202e", "x" * 10_000, "ord-99999999999999999999", "before:9999999999999999999",
    "ord-١٢", "9" * 400, "'; DROP TABLE orders; --", "%s%n", "\r\n", "ドル円", "USD_JPY\n", "paper\x00",
]
HOSTILE_TEXT = st.one_of(st.sampled_from(HOSTILE_SAMPLES), st.text(max_size=40),
                         st.text(alphabet=st.characters(codec="ascii"), max_size=30))
DECIMAL_TEXT = st.one_of(
    st.sampled_from(["1000", "157.103", "0.5", "1E+3", "10000", "0.00000001", "99999999999999999999"]),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"[+-]?[0-9]{0,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,7})?", fullmatch=True),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=6),  # any script's digits
)
# What a field holds, judged by its name: plausible values a request needs to get past its first check.
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "slug": st.sampled_from(["ma_cross", "manual", "fuzz_probe", "bollinger_touch"]),
    "instrument": st.sampled_from(["USD_JPY", "USD_JPY", "EUR_USD", "BTC_JPY"]),
    "account": st.sampled_from(["", "paper", "nope"]),
    "decimal": DECIMAL_TEXT,
    "client_order_id": st.from_regex(r"fz-[A-Za-z0-9._:-]{1,20}", fullmatch=True),
    "order_id": st.sampled_from(["ord-000000000001", "ord-000000000002", "ord-99999999999999999999"]),
    "page_token": st.sampled_from(["", "ord-000000000001", "before:1", "before:9999999999999999999"]),
    "flag": st.sampled_from(["", "global_lock", "entry_enabled", "note", "bogus"]),
    "text": st.one_of(st.just(""), st.text(max_size=60)),
    "traceparent": st.sampled_from(["", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]),
}
_FIELD_KIND = {
    "strategy_slug": "slug", "strategy_slugs": "slug", "slug": "slug", "instrument": "instrument",
    "instruments": "instrument", "account": "account", "quantity": "decimal", "limit_price": "decimal",
    "stop_price": "decimal", "bid": "decimal", "ask": "decimal", "volume": "decimal",
    "client_order_id": "client_order_id", "order_id": "order_id", "page_token": "page_token", "flag": "flag",
    "reason": "text", "note": "text", "actor": "text", "traceparent": "traceparent", "tracestate": "text",
}

SECONDS = st.one_of(
    st.sampled_from([0, -1, 1357077600, 1767603601, 4102444799, 4102444800, 253402300799, 253402300800,
                     -62135596800, -62135596801, 10**12, -(10**12), 2**63 - 1, -(2**63)]),
    st.integers(0, 4102444800), st.integers(-(2**63), 2**63 - 1))
NANOS = st.one_of(st.sampled_from([0, -1, 999_999_999, 1_000_000_000]), st.integers(-(2**31), 2**31 - 1))

_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1), F.TYPE_SINT32: (-(2**31), 2**31 - 1), F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1), F.TYPE_SINT64: (-(2**63), 2**63 - 1), F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}


def mostly(plausible: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Three draws in four plausible, one hostile: deep enough to pass early checks, hostile enough to matter."""
    return st.one_of(plausible, plausible, plausible, hostile)


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({low, high, 0, 1, max(low, -1), min(high, 2**31), min(high, 2**63 - 1), min(high, 2**63)})
    edges = [e for e in edges if low <= e <= high]
    return st.one_of(st.sampled_from(edges), st.integers(max(low, 0), min(high, 5000)), st.integers(low, high))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy:
    if field.type == F.TYPE_STRING:
        kind = _FIELD_KIND.get(field.name)
        return mostly(PLAUSIBLE[kind], HOSTILE_TEXT) if kind else HOSTILE_TEXT
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return mostly(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=64 if field.type == F.TYPE_DOUBLE else 32)
    if field.type in _INT_RANGES:
        return _integers(*_INT_RANGES[field.type])
    raise TypeError(f"no strategy for field {field.full_name} of type {field.type}")


def _timestamp(cls) -> st.SearchStrategy[Message]:
    return st.builds(cls, seconds=SECONDS, nanos=NANOS)


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    if field.is_repeated:
        inner = message(field.message_type, depth + 1) if field.message_type else _scalar(field)
        return st.lists(inner, max_size=4 if depth < 2 else 1)
    if field.message_type is not None:
        return message(field.message_type, depth + 1)
    return _scalar(field)


def _filled(cls, values: dict) -> Message:
    out = cls()
    for name, value in values.items():
        _merged(out, name, value)
    return out


def message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of `descriptor`'s type; each field set or left unset (at its default) at random."""
    cls = GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp(cls)
    fields = {f.name: _field(f, depth) for f in descriptor.fields
              if not (f.message_type is not None and f.message_type.GetOptions().map_entry)  # no request has a map
              and (f.message_type is None or f.is_repeated or depth < 3)}
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _filled(cls, values))


def _mutated(raw: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.integers(0, max(len(raw) - 1, 0)).map(lambda n: raw[:n]),                       # truncated
        st.tuples(st.integers(0, max(len(raw) - 1, 0)), st.integers(0, 255)).map(         # one byte changed
            lambda p: raw[:p[0]] + bytes([p[1]]) + raw[p[0] + 1:] if raw else bytes([p[1]])),
        st.binary(max_size=16).map(lambda tail: raw + tail),                                # trailing garbage
    )


def _with_one_field(base: Message) -> st.SearchStrategy[Message]:
    """`base` with one field replaced by a generated value: a request that is wrong in one place only."""
    fields = [f for f in base.DESCRIPTOR.fields
              if not (f.message_type is not None and f.message_type.GetOptions().map_entry)]

    def replaced(item) -> Message:
        name, value = item
        out = type(base)()
        out.CopyFrom(base)
        out.ClearField(name)
        return _merged(out, name, value)

    return st.sampled_from(fields).flatmap(lambda f: _field(f, 1).map(lambda v: (f.name, v))).map(replaced)


def _merged(out: Message, name: str, value) -> Message:
    target = getattr(out, name)
    if isinstance(value, list):
        target.extend(value)
    elif isinstance(value, Message):
        target.CopyFrom(value)
    else:
        setattr(out, name, value)
    return out


def _nested_one_field(base: Message, path: str) -> st.SearchStrategy[Message]:
    """`base` with one field of its sub-message `path` replaced (the intent of a SubmitRequest, a tick)."""
    def placed(inner: Message) -> Message:
        out = type(base)()
        out.CopyFrom(base)
        target = getattr(out, path)
        if hasattr(target, "add"):  # a repeated message field: replace its first element
            target[0].CopyFrom(inner)
        else:
            target.CopyFrom(inner)
        return out

    holder = getattr(base, path)
    return _with_one_field(holder[0] if hasattr(holder, "add") else holder).map(placed)


def request_bytes(descriptor: Descriptor, plausible: list[Message] = (), nested: str = "") -> st.SearchStrategy[bytes]:
    """What arrives at a method path: a hostile but well-formed message (wholly generated, or a
    plausible request wrong in one field), garbage bytes, or a well-formed message's bytes truncated
    or with a byte changed."""
    generated = message(descriptor)
    if plausible:
        variants = [generated] + [_with_one_field(p) for p in plausible]
        if nested:
            variants += [_nested_one_field(p, nested) for p in plausible]
        generated = st.one_of(*variants)
    encoded = generated.map(lambda m: m.SerializeToString())
    return st.one_of(encoded, encoded, encoded, st.binary(max_size=120), encoded.flatmap(_mutated))
