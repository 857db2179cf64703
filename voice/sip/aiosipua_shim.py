"""The one place that reaches into aiosipua's private API.

aiosipua gives a UAC and a UAS but keeps a few things we need behind leading underscores: the
ACK for a 2xx (sent by its own response handling, which we bypass for a 200 that crossed our
CANCEL), the ``received`` stamp on a request's Via, the UAS's method table and dispatcher, its
in-dialog checks and error answers, whether an outgoing INVITE got its 2xx, a registration's
timers, and the codec list of an m= line we build ourselves. Every such use goes through a
function here, so an upgrade of the pinned version is checked in one module:
``tests/unit/sip/test_aiosipua_shim.py`` asserts each name and signature this module relies on
and fails when a new aiosipua moves or changes one.
"""

from __future__ import annotations

from collections.abc import Callable

from aiosipua import sdp as _sdp
from aiosipua import transport as _transport
from aiosipua import uac_responses as _uac_responses
from aiosipua.dialog import Dialog
from aiosipua.message import SipMessage, SipRequest, SipResponse
from aiosipua.outgoing_call import OutgoingCall
from aiosipua.registration import Registration
from aiosipua.sdp import Codec, MediaDescription
from aiosipua.uac import SipUAC
from aiosipua.uas import SipUAS

RequestHandler = Callable[[SipRequest, tuple[str, int]], None]
MessageHandler = Callable[[SipMessage, tuple[str, int]], None]

# What this module uses, by owner: checked against the installed aiosipua by the test.
PRIVATE_FUNCTIONS = {
    "aiosipua.uac_responses._send_ack": ("uac", "call", "response"),
    "aiosipua.transport._stamp_via_received": ("request", "addr"),
    "aiosipua.sdp._extract_codecs": ("media",),
}
PRIVATE_METHODS = {
    "aiosipua.uas.SipUAS._on_message": ("self", "msg", "addr"),
    "aiosipua.uas.SipUAS._send_error": ("self", "request", "status_code", "reason"),
    "aiosipua.uas.SipUAS._validate_in_dialog": ("self", "dialog", "request"),
    "aiosipua.registration.Registration._cancel_timers": ("self",),
}
PRIVATE_ATTRIBUTES = {
    "aiosipua.uas.SipUAS": ("_handlers",),
    "aiosipua.outgoing_call.OutgoingCall": ("_answered",),
}


def send_2xx_ack(uac: SipUAC, call: OutgoingCall, response: SipResponse) -> None:
    """ACK a 2xx to ``call``'s INVITE (a new transaction, RFC 3261 §13.2.2.4)."""
    _uac_responses._send_ack(uac, call, response)


def codecs_of(media: MediaDescription) -> list[Codec]:
    """The codecs of an m= line from its payload types, rtpmap and fmtp attributes."""
    return _sdp._extract_codecs(media)


def stamp_via_received(request: SipRequest, addr: tuple[str, int]) -> None:
    """Add ``received``/``rport`` to the top Via as the request came from ``addr``."""
    _transport._stamp_via_received(request, addr)


def invite_answered(call: OutgoingCall) -> bool:
    """Whether aiosipua has already taken a 2xx for ``call``'s INVITE."""
    return call._answered.is_set()


def set_request_handler(uas: SipUAS, method: str, handler: RequestHandler) -> None:
    """Answer requests of ``method`` with ``handler`` (aiosipua answers unknown ones 405)."""
    uas._handlers[method.upper()] = handler


def message_dispatcher(uas: SipUAS) -> MessageHandler:
    """The UAS's entry point for every parsed message (requests and responses)."""
    dispatch: MessageHandler = uas._on_message  # type: ignore[assignment]
    return dispatch


def send_error(uas: SipUAS, request: SipRequest, status: int, reason: str) -> None:
    """Answer ``request`` outside any dialog with ``status``."""
    uas._send_error(request, status, reason)


def valid_in_dialog(uas: SipUAS, dialog: Dialog, request: SipRequest) -> bool:
    """RFC 3261 §12.2.2 tag and CSeq checks; the UAS answers 481/500 itself when not valid."""
    return uas._validate_in_dialog(dialog, request)


def stop_registration_timers(registration: Registration) -> None:
    """Stop a registration's refresh and expiry timers (its REGISTER timed out)."""
    registration._cancel_timers()
