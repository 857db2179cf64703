"""RFC 3261 §17 transactions over UDP, in front of aiosipua.

aiosipua sends each request once and never acknowledges a 3xx-6xx answer to an INVITE.
:class:`TransactionUdpTransport` closes both gaps where every message passes anyway:

- client transactions: requests are retransmitted (Timer A for INVITE, doubling without cap;
  Timer E for the rest, capped at T2) until a response arrives, and given up after 64*T1
  (Timers B and F) with ``on_timeout(request)``;
- a 3xx-6xx final answer to an INVITE is acknowledged here (§17.1.1.3: same branch, the
  answer's To tag) and its retransmissions are acknowledged again and not passed up;
- duplicate final answers to other requests are absorbed;
- server side: a retransmitted request we already answered gets the same answer again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosipua.message import SipMessage, SipRequest, SipResponse
from aiosipua.transport import SipTransport

from voice.sip.aiosipua_shim import stamp_via_received

logger = logging.getLogger(__name__)

TxnKey = tuple[str, str]  # (Via branch, method)


def txn_key(message: SipMessage) -> TxnKey | None:
    """The transaction a message belongs to: top Via branch and CSeq method."""
    vias = message.headers.get("via")
    cseq = message.headers.get_first("cseq")
    if not vias or not cseq:
        return None
    branch = ""
    for part in vias[0].split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "branch":
            branch = value.strip()
    parts = cseq.split()
    if not branch or len(parts) != 2:
        return None
    return branch, parts[1].upper()


def build_non2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """ACK for a 3xx-6xx answer (RFC 3261 §17.1.1.3): part of the INVITE's transaction."""
    ack = SipRequest(method="ACK", uri=invite.uri)
    ack.headers.append("Via", invite.headers.get("via")[0])
    for route in invite.headers.get("route"):
        ack.headers.append("Route", route)
    for name in ("From", "Call-ID"):
        value = invite.headers.get_first(name)
        if value:
            ack.headers.set_single(name, value)
    to_value = response.headers.get_first("to") or invite.headers.get_first("to") or ""
    ack.headers.set_single("To", to_value)
    seq = (invite.headers.get_first("cseq") or "1 INVITE").split()[0]
    ack.headers.set_single("CSeq", f"{seq} ACK")
    ack.headers.set_single("Max-Forwards", "70")
    return ack


@dataclass(eq=False)
class _ClientTxn:
    request: SipRequest
    raw: bytes
    addr: tuple[str, int]
    interval: float
    retransmit: asyncio.TimerHandle | None = None
    timeout: asyncio.TimerHandle | None = None
    final: int = 0  # status of the final answer once one came
    ack: bytes | None = None

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    def stop_timers(self) -> None:
        for handle in (self.retransmit, self.timeout):
            if handle is not None:
                handle.cancel()
        self.retransmit = self.timeout = None


class _Protocol(asyncio.DatagramProtocol):
    """aiosipua's protocol asserts a transport class Python 3.11 does not use; this one not."""

    def __init__(self, owner: TransactionUdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.debug("SIP socket error: %s", exc)


@dataclass
class TransactionUdpTransport(SipTransport):
    """UDP transport running client and server transaction timers (see module doc).

    Built on aiosipua's public transport interface only; it owns its socket.
    """

    t1: float = 0.5
    t2: float = 4.0
    on_timeout: Callable[[SipRequest], None] | None = None
    _client: dict[TxnKey, _ClientTxn] = field(default_factory=dict, init=False, repr=False)
    _answered: dict[TxnKey, tuple[bytes, tuple[str, int], float]] = field(
        default_factory=dict, init=False, repr=False
    )
    _socket: asyncio.DatagramTransport | None = field(default=None, init=False, repr=False)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.local_addr
        )
        self._socket = transport
        _host, port = transport.get_extra_info("sockname")[:2]
        if self.local_addr[1] == 0:
            self.local_addr = (self.local_addr[0], int(port))

    async def stop(self) -> None:
        for txn in self._client.values():
            txn.stop_timers()
        self._client.clear()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    @property
    def pending(self) -> int:
        """Client transactions still waiting for a final answer."""
        return sum(1 for t in self._client.values() if not t.final)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        raw = bytes(message)
        self._sendto(raw, addr)
        loop = asyncio.get_running_loop()
        key = txn_key(message)
        if key is None:
            return
        if isinstance(message, SipResponse):
            if message.status_code >= 200:
                self._answered[key] = (raw, addr, loop.time() + 64 * self.t1)
            return
        if message.method == "ACK":
            return
        old = self._client.pop(key, None)
        if old is not None:
            old.stop_timers()
        txn = _ClientTxn(request=message, raw=raw, addr=addr, interval=self.t1)
        txn.retransmit = loop.call_later(self.t1, self._retransmit, key, txn)
        txn.timeout = loop.call_later(64 * self.t1, self._expire, key, txn)
        self._client[key] = txn
        if message.method == "CANCEL":
            self._end_cancelled_after(key[0], loop)

    def _end_cancelled_after(self, branch: str, loop: asyncio.AbstractEventLoop) -> None:
        """RFC 3261 9.1: an INVITE that was CANCELled and still has no final answer 64*T1
        later is taken as cancelled and its transaction ended; in Proceeding (after a 1xx) it
        has no timer of its own, so a peer that never answers the CANCEL would keep it
        forever. (In Calling, its own timer B still ends it and reports the timeout.)"""
        invite_key = (branch, "INVITE")
        invite = self._client.get(invite_key)
        if invite is None or invite.final or invite.timeout is not None:
            return
        invite.timeout = loop.call_later(64 * self.t1, self._forget, invite_key, invite)

    def _forget(self, key: TxnKey, txn: _ClientTxn) -> bool:
        """End ``txn`` without a word upstairs; False when it had ended already."""
        if self._client.get(key) is not txn:
            return False
        txn.stop_timers()
        del self._client[key]
        return True

    def abandon(self, request: SipRequest) -> None:
        """Stop retransmitting ``request`` without reporting a timeout."""
        key = txn_key(request)
        txn = self._client.pop(key, None) if key is not None else None
        if txn is not None:
            txn.stop_timers()

    def _sendto(self, raw: bytes, addr: tuple[str, int]) -> None:
        if self._socket is None:
            raise RuntimeError("Transport not started")
        self._socket.sendto(raw, addr)

    def _retransmit(self, key: TxnKey, txn: _ClientTxn) -> None:
        if self._socket is None or self._client.get(key) is not txn:
            return
        self._socket.sendto(txn.raw, txn.addr)
        txn.interval = txn.interval * 2 if txn.is_invite else min(txn.interval * 2, self.t2)
        txn.retransmit = asyncio.get_running_loop().call_later(
            txn.interval, self._retransmit, key, txn
        )

    def _expire(self, key: TxnKey, txn: _ClientTxn) -> None:
        if not self._forget(key, txn) or txn.final:
            return  # gone already, or Timer D/K: the completed transaction simply ends
        logger.info("%s timed out (no final answer)", txn.request.method)
        if self.on_timeout is not None:
            self.on_timeout(txn.request)

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = SipMessage.parse(data)
        except Exception:
            logger.warning("Dropped an unparsable SIP datagram from %s", addr)
            return
        if isinstance(msg, SipResponse):
            if not self._client_response(msg):
                return
        else:
            stamp_via_received(msg, addr)
            if self._server_retransmission(msg):
                return
        if self.on_message is not None:
            try:
                self.on_message(msg, addr)
            except Exception:
                logger.exception("Error handling a SIP message from %s", addr)

    def _client_response(self, response: SipResponse) -> bool:
        """Drive the client transaction; True when the answer goes up to the UA."""
        key = txn_key(response)
        txn = self._client.get(key) if key is not None else None
        if txn is None or key is None:
            return True  # 2xx retransmissions after the transaction ended: the UA ACKs them
        status = response.status_code
        if status < 200:
            if txn.is_invite and txn.retransmit is not None:
                txn.retransmit.cancel()  # Proceeding: Timer A stops, B no longer applies
                txn.retransmit = None
                if txn.timeout is not None:
                    txn.timeout.cancel()
                    txn.timeout = None
            return not txn.final
        if txn.final:
            if txn.ack is not None:  # retransmitted 3xx-6xx: ACK again, once is enough upstairs
                self._sendto(txn.ack, txn.addr)
            return False
        txn.final = status
        txn.stop_timers()
        loop = asyncio.get_running_loop()
        if txn.is_invite and status >= 300:
            txn.ack = bytes(build_non2xx_ack(txn.request, response))
            self._sendto(txn.ack, txn.addr)
        if txn.is_invite and status < 300:
            del self._client[key]
        else:  # linger to absorb retransmissions (Timers D and K)
            txn.timeout = loop.call_later(64 * self.t1, self._expire, key, txn)
        return True

    def _server_retransmission(self, request: SipRequest) -> bool:
        if request.method == "ACK":
            return False
        key = txn_key(request)
        if key is None:
            return False
        now = asyncio.get_running_loop().time()
        if len(self._answered) > 256:
            for stale in [k for k, v in self._answered.items() if v[2] < now]:
                del self._answered[stale]
        cached = self._answered.get(key)
        if cached is None or cached[2] < now:
            return False
        self._sendto(cached[0], cached[1])
        return True
