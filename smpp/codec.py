"""The one wrapper around smpplib's PDU classes: frame bytes <-> :class:`Pdu`.

smpplib knows every v3.4 PDU layout (``smpplib.command``: field order, types and limits) and
encodes them well, so we use it for that, and only through this module. Its decoder and its
object model have sharp edges, each measured in our venv (smpplib 2.2.4) and tested in
``tests/unit/test_smpp_codec.py``:

* ``make_pdu(..., sequence=42)`` ignores the sequence (``_set_vars`` skips attributes that
  already read as non-None, and ``sequence`` falls back to the client's counter): we set
  ``.sequence`` and ``.status`` on the object after building it.
* Building a request or parsing any PDU draws ``next_sequence()`` from a "client"; the default
  one has no such method (``AttributeError``). We pass a private numbering object that hands
  out nothing, so decoding never disturbs a real counter.
* Its parser is lax: a C-string without its NUL is silently cut, a short_message shorter than
  ``sm_length`` is silently cut, a body that stops early leaves fields ``None``, an integer TLV
  is read at the size the schema expects rather than the size it announces (so the rest of the
  TLV stream drifts), a TLV it does not know raises ``UnknownCommandError`` and one it knows
  but not for this command raises ``KeyError``; truncated input leaks ``struct.error``. So we
  validate the mandatory part against smpplib's own schema before letting it parse, and read
  the TLVs ourselves (SMPP v3.4 §3.2.3/§5.3: unknown or inapplicable TLVs are ignored). Every
  failure becomes :class:`DecodeError` with the status the peer should get.
* Encoding wants ``str`` for C-strings and ``bytes`` for octet strings while parsing returns
  ``bytes`` for both, and over-long C-strings are silently truncated on encode. :class:`Pdu`
  holds ``bytes`` for every string; :func:`encode` converts and refuses over-long values.

Everything else (sessions, text, the adapter) sees only :class:`Pdu` and :class:`DecodeError`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from smpplib import command as smpp_command
from smpplib import command_codes, consts
from smpplib.exceptions import UnknownCommandError
from smpplib.ptypes import flag, ostr

_HEADER = struct.Struct(">LLLL")
_TLV_HEADER = struct.Struct(">HH")

Value = int | bytes


class Status(IntEnum):
    """The command_status values we send or act on (SMPP v3.4 §5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVESMCLASS = 0x43
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSYSTYP = 0x53
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RX_P_APPN = 0x65  # the ESME's permanent application error: for a deliver_sm to us
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RINVOPTPARAMVAL = 0xC4


@dataclass(frozen=True, slots=True)
class Pdu:
    """One decoded (or to-be-encoded) PDU.

    ``params`` maps smpplib's field names (mandatory fields and TLVs alike) to ``int`` or
    ``bytes``; C-strings are held without their NUL. A TLV that was absent is absent here.
    """

    command: str
    sequence: int
    status: int = 0
    params: Mapping[str, Value] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return self.command.endswith("_resp") or self.command == "generic_nack"

    def string(self, name: str) -> str:
        """A C-string field as text ('' if absent); latin-1 keeps every octet."""
        value = self.params.get(name, b"")
        return value.decode("latin-1") if isinstance(value, bytes) else ""

    def octets(self, name: str) -> bytes:
        value = self.params.get(name, b"")
        return value if isinstance(value, bytes) else b""

    def integer(self, name: str) -> int | None:
        value = self.params.get(name)
        return value if isinstance(value, int) else None

    def __repr__(self) -> str:
        # Bodies carry passwords and citizens' texts: never let a repr put them in a log.
        return f"Pdu({self.command}, seq={self.sequence}, status={self.status:#x})"


class DecodeError(Exception):
    """The peer sent a PDU we cannot accept: *their* fault, answered with ``status``.

    ``command`` is the command's name when its id is known (so the session can reply with the
    matching ``*_resp``), else ``None`` (the reply is ``generic_nack``). ``reason`` names the
    problem and the field, never field contents.
    """

    def __init__(self, status: int, sequence: int, command: str | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.sequence = sequence
        self.command = command
        self.reason = reason


class _PrivateNumbering:
    """The "client" smpplib draws sequence numbers from; we always overwrite them."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_NUMBERING: Final = _PrivateNumbering()
_COMMAND_IDS: Final[dict[str, int]] = dict(command_codes.commands)
_COMMAND_NAMES: Final[dict[int, str]] = {code: name for name, code in _COMMAND_IDS.items()}
_TLV_NAMES: Final[dict[int, str]] = {code: name for name, code in consts.OPTIONAL_PARAMS.items()}

MAX_SHORT_MESSAGE: Final = 254
"""Octets of short_message at most (v3.4 §5.2.21); longer texts travel in message_payload."""
TLVS_READ: Final = frozenset(
    {
        "message_payload", "sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum",
        "user_message_reference", "more_messages_to_send", "sc_interface_version",
    }
)  # fmt: skip
"""The TLVs the gateway reads: a malformed one is refused; any other is skipped."""

# v3.4 §4.1.2 (bind_*_resp) and §4.4.2 (submit_sm_resp): no body when command_status != 0.
_BODY_OMITTED_ON_ERROR: Final = frozenset(
    {"bind_transmitter_resp", "bind_receiver_resp", "bind_transceiver_resp", "submit_sm_resp"}
)

# A C-string longer than its field allows gets the status that names the field.
_TOO_LONG_STATUS: Final[dict[str, Status]] = {
    "system_id": Status.ESME_RINVSYSID,
    "password": Status.ESME_RINVPASWD,
    "system_type": Status.ESME_RINVSYSTYP,
    "service_type": Status.ESME_RINVSERTYP,
    "source_addr": Status.ESME_RINVSRCADR,
    "destination_addr": Status.ESME_RINVDSTADR,
    "schedule_delivery_time": Status.ESME_RINVSCHED,
    "validity_period": Status.ESME_RINVEXPIRY,
    "message_id": Status.ESME_RINVMSGID,
}


def command_id(name: str) -> int:
    """The numeric id of a v3.4 command name (``KeyError`` if there is none)."""
    return _COMMAND_IDS[name]


def can_encode(name: str) -> bool:
    """Whether smpplib can build this command (it lacks cancel_sm, replace_sm, submit_multi,
    outbind and their responses)."""
    try:
        _template(name)
    except UnknownCommandError:
        return False
    return True


def decode(frame: bytes) -> Pdu:
    """One whole PDU (as cut by :mod:`smpp.framing`) to a :class:`Pdu`, or :class:`DecodeError`.

    Request bodies are checked strictly. A response whose body is empty or malformed still
    decodes, with no params: its header (status, sequence) is all we act on, and peers often
    send ``deliver_sm_resp`` with no body at all.
    """
    if len(frame) < _HEADER.size:
        raise DecodeError(Status.ESME_RINVCMDLEN, 0, None, "shorter than a header")
    length, code, status, sequence = _HEADER.unpack_from(frame)
    name = _COMMAND_NAMES.get(code)
    if length != len(frame):
        raise DecodeError(Status.ESME_RINVCMDLEN, sequence, name, "command_length mismatch")
    if name is None:
        raise DecodeError(Status.ESME_RINVCMDID, sequence, None, f"unknown command {code:#x}")
    try:
        template = _template(name)
    except UnknownCommandError:
        raise DecodeError(Status.ESME_RINVCMDID, sequence, name, "unsupported command") from None
    try:
        params = _parse_body(template, frame[_HEADER.size :])
    except _BodyError as error:
        if name.endswith("_resp") or name == "generic_nack":
            return Pdu(name, sequence, status)
        raise DecodeError(error.status, sequence, name, error.reason) from None
    return Pdu(name, sequence, status, params)


def encode(pdu: Pdu) -> bytes:
    """A :class:`Pdu` to bytes. Raises ``ValueError`` for a PDU we should never have built
    (unknown command or field, value out of range): that is *our* bug, not the peer's."""
    try:
        code = _COMMAND_IDS[pdu.command]
        built = _template(pdu.command)
    except (KeyError, UnknownCommandError):
        raise ValueError(f"cannot encode command {pdu.command!r}") from None
    if pdu.status and pdu.command in _BODY_OMITTED_ON_ERROR:
        return _HEADER.pack(_HEADER.size, code, pdu.status, pdu.sequence)
    optional = built.field_is_optional
    present: list[str] = []
    for name, value in pdu.params.items():
        param = built.params.get(name)
        if param is None:
            raise ValueError(f"{pdu.command} has no field {name!r}")
        setattr(built, name, _to_smpplib(name, param, value))
        if optional(name):
            present.append(name)
    # smpplib walks every field of the command, most of them absent TLVs that encode to
    # nothing (none has a default); walking the mandatory fields and the TLVs we set gives the
    # same octets.
    mandatory = _PROTOTYPES[pdu.command][2]
    built.params_order = mandatory + tuple(sorted(present, key=built.params_order.index))
    built.sequence = pdu.sequence
    built.status = pdu.status
    data: bytes = built.generate()
    return data


def _template(name: str) -> Any:
    """A fresh smpplib command object for ``name`` (``UnknownCommandError`` if it has none).

    smpplib's constructors are most of the cost of a PDU (``SubmitSM()`` sets some 45
    attributes one by one through ``hasattr``/``getattr``). A freshly built object holds only
    immutable values, so the first one of each command is kept as a snapshot of its attributes
    and each later object is that snapshot copied into a new instance: the same object as the
    constructor would give, at a tenth of the cost, and still one object per call (the codec
    is used from more than one thread).
    """
    prototype = _PROTOTYPES.get(name)
    if prototype is None:
        prototype = _PROTOTYPES[name] = _prototype(smpp_command.factory(name, client=_NUMBERING))
    cls, state, _ = prototype
    fresh = cls.__new__(cls)
    fresh.__dict__.update(state)
    return fresh


def _prototype(built: Any) -> tuple[Any, dict[str, Any], tuple[str, ...]]:
    """The snapshot of a new command object, with two of its lookups answered from tables.

    smpplib asks ``field_is_optional(name)`` for every field on every encode and parse (three
    attribute probes each) and ``_int_pack_format(name)`` for every integer; both depend only
    on the command's class and the field's name. They are computed once here, for every name
    they can be asked about, and set on the object as plain lookups with the same answers.
    """
    names = set(built.params) | set(consts.OPTIONAL_PARAMS)
    optional = frozenset(name for name in names if built.field_is_optional(name))
    formats = {
        name: consts.INT_PACK_FORMATS[param.size]
        for name, param in built.params.items()
        if param.type is int and getattr(param, "size", None) in consts.INT_PACK_FORMATS
    }
    mandatory = tuple(f for f in built.params_order if f not in optional)
    state = dict(vars(built))
    state["field_is_optional"] = optional.__contains__
    state["_int_pack_format"] = formats.__getitem__
    return type(built), state, mandatory


_PROTOTYPES: dict[str, tuple[Any, dict[str, Any], tuple[str, ...]]] = {}


def _to_smpplib(name: str, param: Any, value: Value) -> Value | str:
    if param.type is int:
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * param.size):
            raise ValueError(f"{name} must be an integer of {param.size} octet(s)")
        return value
    if not isinstance(value, bytes):
        raise ValueError(f"{name} must be bytes")
    if param.type is ostr:
        return value
    if param.type is str:
        maximum: int = getattr(param, "max", 1 << 16)
        if b"\0" in value or len(value) >= maximum:
            raise ValueError(f"{name} must be at most {maximum - 1} octets without NUL")
        return value.decode("latin-1")
    raise ValueError(f"{name}: flag parameters are not supported")


class _BodyError(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _parse_body(template: Any, body: bytes) -> dict[str, Value]:
    """Validate the mandatory fields against smpplib's schema, let smpplib parse them, then
    read the TLVs ourselves."""
    mandatory = _PROTOTYPES[template.command][2]
    if template.command.endswith("_resp") and not body:
        return {}
    end = _mandatory_end(template, mandatory, body)
    template.parse_params(body[:end])
    params: dict[str, Value] = {}
    for name in mandatory:
        value = getattr(template, name)
        if value is None:  # smpplib stops before an empty short_message at the body's end
            value = b"" if template.params[name].type is ostr else 0
        params[name] = value
    params.update(_parse_tlvs(template, body[end:]))
    return params


def _mandatory_end(template: Any, mandatory: tuple[str, ...], body: bytes) -> int:
    pos = 0
    sm_length = 0
    for name in mandatory:
        param = template.params[name]
        if param.type is int:
            if pos + param.size > len(body):
                raise _BodyError(Status.ESME_RINVCMDLEN, f"body ends inside {name}")
            if name == "sm_length":
                sm_length = body[pos]
                if sm_length > MAX_SHORT_MESSAGE:
                    raise _BodyError(Status.ESME_RINVMSGLEN, f"sm_length over {MAX_SHORT_MESSAGE}")
            pos += param.size
        elif param.type is str:
            nul = body.find(b"\0", pos)
            if nul < 0:
                raise _BodyError(Status.ESME_RINVCMDLEN, f"{name} has no terminating NUL")
            if nul + 1 - pos > param.max:
                status = _TOO_LONG_STATUS.get(name, Status.ESME_RINVPARLEN)
                raise _BodyError(status, f"{name} longer than {param.max - 1} octets")
            pos = nul + 1
        else:  # the only mandatory octet string is short_message, sized by sm_length
            if pos + sm_length > len(body):
                raise _BodyError(Status.ESME_RINVCMDLEN, f"{name} shorter than sm_length")
            pos += sm_length
    return pos


def _parse_tlvs(template: Any, data: bytes) -> dict[str, Value]:
    params: dict[str, Value] = {}
    pos = 0
    while pos < len(data):
        if pos + _TLV_HEADER.size > len(data):
            raise _BodyError(Status.ESME_RINVOPTPARSTREAM, "truncated TLV header")
        tag, length = _TLV_HEADER.unpack_from(data, pos)
        pos += _TLV_HEADER.size
        value = data[pos : pos + length]
        if len(value) != length:
            raise _BodyError(Status.ESME_RINVOPTPARSTREAM, f"TLV {tag:#06x} overruns the PDU")
        pos += length
        name = _TLV_NAMES.get(tag)
        param = template.params.get(name) if name else None
        if name is None or param is None:
            continue  # unknown, or not defined for this command: ignored (v3.4 §3.2.3)
        try:
            params[name] = _tlv_value(name, param, value)
        except _BodyError:
            if name in TLVS_READ:
                raise
            # smpplib's table gets some wrong (source_addr_subunit is one octet, the
            # subaddresses octet strings): a TLV we do not read must not cost a message.
    return params


def _tlv_value(name: str, param: Any, value: bytes) -> Value:
    if param.type is int:
        if len(value) != param.size:
            raise _BodyError(Status.ESME_RINVPARLEN, f"TLV {name} must be {param.size} octets")
        return int.from_bytes(value, "big")
    if param.type is str:
        if not value.endswith(b"\0") or b"\0" in value[:-1]:
            raise _BodyError(Status.ESME_RINVPARLEN, f"TLV {name} is not a C-string")
        return value[:-1]
    if param.type is flag:
        if value:
            raise _BodyError(Status.ESME_RINVPARLEN, f"TLV {name} must be empty")
        return 1
    return value


ENCODABLE: Final = frozenset(name for name in _COMMAND_IDS if can_encode(name))
"""The commands smpplib can build (it lacks cancel_sm, replace_sm, submit_multi, outbind and
their responses)."""
