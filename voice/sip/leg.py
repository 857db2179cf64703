"""One outgoing SIP call as signalling only: INVITE, answer or final code, CANCEL, BYE."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiosipua.dialog import DialogState
from aiosipua.incoming_call import IncomingCall
from aiosipua.message import SipRequest, SipResponse
from aiosipua.outgoing_call import OutgoingCall
from aiosipua.sdp import SdpMessage

from voice.sip.sdp import MediaParams, SdpMismatch, accept_answer
from voice.transfer import Transfer

if TYPE_CHECKING:
    from voice.sip.agent import SipAgent

logger = logging.getLogger(__name__)


class OutgoingLeg:
    """Follows one INVITE through the trunk and ends its dialog on request or by the far end.

    Times are ``time.monotonic()`` values; ``final_code`` is the final answer to the INVITE
    (200 when answered; None when the trunk never answered).
    """

    def __init__(self, agent: SipAgent, to_uri: str, offer: SdpMessage) -> None:
        self.agent = agent
        self.to_uri = to_uri
        self.offer = offer
        self.call: OutgoingCall | None = None
        self.started_at = time.monotonic()
        self.ringing_at: float | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.final_code: int | None = None
        self.reason = ""
        self.media: MediaParams | None = None
        self.media_error: str | None = None
        self.remote_hangup = False
        self.cancelled = False
        self.provisional = asyncio.Event()
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_media_update: Callable[[MediaParams], None] | None = None
        self._bye_answered = asyncio.Event()
        self._late_bye_sent = False
        # a transfer in progress: REFER's final answer, then the NOTIFYs' sipfrag statuses
        self._refer_answer: tuple[int | None, str] | None = None
        self._refer_answered = asyncio.Event()
        self._notified: list[tuple[int, str]] = []
        self._notify_final = asyncio.Event()

    @property
    def call_id(self) -> str:
        return self.call.call_id if self.call is not None else ""

    def start(self) -> None:
        self.call = self.agent.send_invite(self)

    # --- events routed by the agent ---

    def on_response(self, response: SipResponse) -> None:
        cseq = response.cseq
        if cseq is None or self.call is None:
            return
        method = cseq.method.upper()
        if method == "BYE" and response.status_code >= 200:
            self._bye_answered.set()
            return
        if method == "REFER":
            if response.status_code >= 200 and self._refer_answer is None:
                self._refer_answer = (response.status_code, response.reason_phrase)
                self._refer_answered.set()
            return
        if method != "INVITE":
            return
        status = response.status_code
        if status < 200:
            if status > 100 and self.ringing_at is None:
                self.ringing_at = time.monotonic()
            self.provisional.set()
            return
        if status < 300:
            self._on_2xx(response)
            return
        invite_cseq = self.call.invite.cseq
        if invite_cseq is not None and cseq.seq < invite_cseq.seq:
            return  # answer to an INVITE since retried with credentials
        self._end(status, response.reason_phrase)

    def _on_2xx(self, response: SipResponse) -> None:
        assert self.call is not None
        if self.cancelled and not self.answered.is_set():
            # 200 crossed our CANCEL: the call exists now, so acknowledge and end it
            self._ack_and_bye(response)
            self._end(487, "Cancelled (answered too late)")
            return
        if self.answered.is_set() or self.ended.is_set():
            return
        self.final_code = 200
        self.answered_at = time.monotonic()
        self.provisional.set()
        try:
            if self.call.sdp_answer is None:
                raise SdpMismatch("the answer has no SDP")
            self.media = accept_answer(self.offer, self.call.sdp_answer)
        except (SdpMismatch, ValueError) as err:
            self.media_error = str(err)
            logger.warning("Unusable SDP answer on %s: %s", self.call_id, err)
        self.answered.set()

    def _ack_and_bye(self, response: SipResponse) -> None:
        assert self.call is not None
        self.agent.ack_late_answer(self.call, response)
        if not self._late_bye_sent:
            self._late_bye_sent = True
            self.agent.send_bye(self.call)

    def on_timeout(self, request: SipRequest) -> None:
        if request.method == "INVITE" and not self.ended.is_set():
            self._end(None, "No answer from the trunk (timer B)")
        elif request.method == "BYE":
            self._bye_answered.set()
        elif request.method == "REFER" and self._refer_answer is None:
            self._refer_answer = (None, "no answer to REFER (timer F)")
            self._refer_answered.set()

    def on_transfer_progress(self, status: int, reason: str) -> None:
        """A NOTIFY (Event: refer) reported the new call's progress as a sipfrag status."""
        self._notified.append((status, reason))
        if status >= 200:
            self._notify_final.set()

    def on_remote_bye(self) -> None:
        self.remote_hangup = True
        self._end(self.final_code, "Hung up by the client")

    def on_info_dtmf(self, digit: str) -> None:
        if self.on_dtmf is not None:
            self.on_dtmf(digit)

    def on_reinvite(self, wrapper: IncomingCall) -> None:
        """Accept a session refresh or a new media address with our unchanged offer."""
        offer = wrapper.sdp_offer
        if offer is not None and self.media is not None:
            try:
                params = accept_answer(self.offer, offer)
            except SdpMismatch:
                wrapper.reject(488, "Not Acceptable Here")
                return
            if params.remote != self.media.remote and self.on_media_update is not None:
                self.on_media_update(params)
        version = int(self.offer.origin.session_version) + 1
        self.offer.origin.session_version = str(version)
        wrapper.accept(self.offer)

    # --- actions ---

    async def refer(self, target_uri: str, wait_s: float) -> Transfer:
        """Ask the far end to call ``target_uri`` instead of us (blind transfer, RFC 3515) and
        follow it: REFER's answer, then NOTIFYs until a final sipfrag status, at most
        ``wait_s`` for each. The dialog stays up either way: the caller hangs up."""
        if self.call is None or not self.answered.is_set() or self.ended.is_set():
            return Transfer(target_uri, "ended", reason="the call is not up")
        self._refer_answer = None
        self._refer_answered.clear()
        self._notified.clear()
        self._notify_final.clear()
        self.agent.send_refer(self.call, target_uri)
        if not await first_set(wait_s, self._refer_answered, self.ended):
            return Transfer(target_uri, "refused", reason="no answer to REFER")
        if self._refer_answer is None:
            return Transfer(target_uri, "ended", reason="the call ended before REFER's answer")
        code, reason = self._refer_answer
        if code is None or code >= 300:
            return Transfer(target_uri, "refused", code, reason)
        await first_set(wait_s, self._notify_final, self.ended)
        progress = tuple(status for status, _ in self._notified)
        final = next(((c, r) for c, r in self._notified if c >= 200), None)
        if final is None:
            if self.ended.is_set():
                return Transfer(target_uri, "ended", None, "the call ended", progress)
            return Transfer(target_uri, "failed", None, "no final NOTIFY", progress)
        if final[0] < 300:
            return Transfer(target_uri, "connected", final[0], final[1], progress)
        return Transfer(target_uri, "failed", final[0], final[1], progress)

    async def cancel(self, wait: float) -> None:
        """End a call that is not answered: CANCEL once the trunk has answered provisionally."""
        if self.call is None or self.ended.is_set() or self.answered.is_set():
            return
        self.cancelled = True
        if self.provisional.is_set():
            self.agent.send_cancel(self.call)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.ended.wait()
        else:
            self.agent.abandon(self.call)
        self._end(self.final_code or 487, self.reason or "Cancelled (ring timeout)")

    async def bye(self, wait: float) -> None:
        """Hang up an answered call and wait (bounded) for the BYE to be answered."""
        if self.call is None or self.ended.is_set():
            return
        if self.call.dialog.state == DialogState.CONFIRMED:
            self.agent.send_bye(self.call)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._bye_answered.wait()
        self._end(self.final_code, "Hung up by the robot")

    def _end(self, code: int | None, reason: str) -> None:
        if self.ended.is_set():
            return
        if self.final_code is None:
            self.final_code = code
        self.reason = reason
        self.ended_at = time.monotonic()
        self.ended.set()
        self.agent.forget(self)


async def first_set(wait_s: float | None, *events: asyncio.Event) -> bool:
    """Wait until one of ``events`` is set; False when ``wait_s`` passed first."""
    if any(e.is_set() for e in events):
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)
