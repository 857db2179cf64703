"""A SIP user agent for one trunk: aiosipua's UAS/UAC over our transaction transport.

Small fixes on top of aiosipua, each pinned by a SIPp scenario:
- retransmissions, timeouts and ACK for 3xx-6xx answers (``TransactionUdpTransport``);
- the dialog's remote target and route set are taken from the 2xx (aiosipua keeps the To URI);
- INFO is answered (200) and its keypad digit passed on; unknown dialogs get 481;
- a re-INVITE on our call is answered with our offer (aiosipua leaves it unanswered);
- an INVITE to us is refused with 480 (the robot only calls out);
- REFER (blind transfer, RFC 3515) on our call, its NOTIFYs' sipfrag progress passed to the leg;
- REGISTER (with refresh and digest) when the trunk asks for it, kept up by
  :meth:`SipAgent._keep_registered`: a REGISTER that times out or is refused is retried with
  backoff, and the state is reported to the health board (component ``trunk NAME
  registration``) with the trunk and registrar named;
- host names of the proxy and registrar are resolved off the event loop (a DNS failure is a
  trunk failure with its own reason, not a silent UDP send error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

from aiosipua.auth import SipDigestAuth
from aiosipua.dialog import DialogState
from aiosipua.headers import stringify_uri
from aiosipua.incoming_call import IncomingCall
from aiosipua.message import SipRequest, SipResponse
from aiosipua.outgoing_call import OutgoingCall
from aiosipua.registration import Registration, RegistrationState
from aiosipua.uac import SipUAC
from aiosipua.uas import SipUAS

from povtor.errors import ChannelDown, ConfigError
from povtor.health import HealthReporter, HealthState
from voice.sip import aiosipua_shim as shim
from voice.sip.info import dtmf_from_info
from voice.sip.leg import OutgoingLeg
from voice.sip.transactions import TransactionUdpTransport
from voice.sip.trunks import TrunkConfig, split_hostport

logger = logging.getLogger(__name__)

USER_AGENT = "Povtor"
DNS_TTL_S = 60.0  # a resolved proxy/registrar address is reused this long


class _UAC(SipUAC):
    """aiosipua's UAC with the dialog target fixed and every response shown to a listener."""

    def __init__(
        self,
        transport: TransactionUdpTransport,
        advertised: tuple[str, int],
        listener: Callable[[SipResponse], None],
    ) -> None:
        super().__init__(transport, advertised_addr=advertised)
        self._listener = listener

    def handle_response(self, response: SipResponse, addr: tuple[str, int]) -> None:
        cseq = response.cseq
        call = self.get_call(response.call_id or "")
        if (
            call is not None
            and cseq is not None
            and cseq.method.upper() == "INVITE"
            and 200 <= response.status_code < 300
            and not shim.invite_answered(call)
        ):
            # RFC 3261 §12.1.2: in-dialog requests go to the 2xx Contact via its Record-Route
            contacts = response.contact
            if contacts:
                call.dialog.remote_target = stringify_uri(contacts[0].uri)
            call.dialog.route_set = list(reversed(response.headers.get("record-route")))
        try:
            super().handle_response(response, addr)
        except Exception:
            logger.exception("aiosipua failed on a %d answer", response.status_code)
        self._listener(response)


class SipAgent:
    """Signalling for one trunk: sends INVITEs, routes what comes back to each call's leg."""

    def __init__(self, trunk: TrunkConfig, health: HealthReporter | None = None) -> None:
        if trunk.transport.lower() != "udp":
            raise ConfigError(f"trunk {trunk.name}: only UDP transport is supported")
        self.trunk = trunk
        self.health = health
        self.transport = TransactionUdpTransport(
            local_addr=(trunk.bind_host, trunk.local_port), t1=trunk.t1_s
        )
        self.transport.on_timeout = self._on_timeout
        self._legs: dict[str, OutgoingLeg] = {}
        self._auth = (
            SipDigestAuth(trunk.auth_user or trunk.user or "", trunk.password.get_secret_value())
            if trunk.password is not None
            else None
        )
        self.registration: Registration | None = None
        self._register_answered = asyncio.Event()
        self._registration_changed = asyncio.Event()
        self._registration_tried = asyncio.Event()  # the first REGISTER came to an end
        self._registration_problem = ""
        self._registration_task: asyncio.Task[None] | None = None
        self._resolved: dict[tuple[str, int], tuple[tuple[str, int], float]] = {}
        self._uac: _UAC | None = None
        self._uas: SipUAS | None = None

    @property
    def uac(self) -> _UAC:
        assert self._uac is not None, "agent not started"
        return self._uac

    @property
    def advertised(self) -> tuple[str, int]:
        return self.trunk.advertised_host, self.transport.local_addr[1]

    @property
    def component(self) -> str:
        """The trunk's name on the health board."""
        return f"trunk {self.trunk.name}"

    def _report(self, component: str, state: HealthState, reason: str = "") -> None:
        if self.health is not None:
            self.health.report(component, state, reason)

    async def start(self) -> None:
        try:
            await self.transport.start()
        except OSError as err:
            trunk = self.trunk
            setting = (
                "POVTOR_SIP_LOCAL_PORT"
                if trunk.name == "default"
                else f"local_port of trunk {trunk.name!r} in the trunks file"
            )
            raise ConfigError(
                f"trunk {trunk.name}: cannot listen for SIP on {trunk.bind_host}:"
                f"{trunk.local_port} ({os.strerror(err.errno) if err.errno else err}; "
                "is a worker already running?): "
                f"set {setting} (0 = any free port)"
            ) from None
        self._uac = _UAC(self.transport, self.advertised, self._on_response)
        uas = SipUAS(
            self.transport, user_agent=USER_AGENT, uac=self._uac, advertised_addr=self.advertised
        )
        uas.on_bye = self._on_bye
        uas.on_reinvite = self._on_reinvite
        uas.on_invite = self._on_invite
        uas.on_transfer_progress = self._on_transfer_progress
        shim.set_request_handler(uas, "INFO", self._on_info)
        self.transport.on_message = shim.message_dispatcher(uas)
        self._uas = uas
        if self.trunk.register_enabled:
            self._register()

    async def close(self) -> None:
        if self._registration_task is not None:
            self._registration_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._registration_task
            self._registration_task = None
        registration = self.registration
        if registration is not None and registration.state == RegistrationState.REGISTERED:
            self._register_answered.clear()
            registration.unregister()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(2.0, 64 * self.trunk.t1_s)):
                    await self._register_answered.wait()
        if self._uac is not None:
            self._uac.close()
        await self.transport.stop()

    # --- registration ---

    def _register(self) -> None:
        registrar = self.trunk.registrar_addr
        if registrar is None:
            raise ConfigError(
                f"trunk {self.trunk.name}: registration needs POVTOR_SIP_REGISTRAR or _PROXY"
            )
        self._registration_task = asyncio.create_task(
            self._keep_registered(registrar), name=f"register-{self.trunk.name}"
        )

    @property
    def registered(self) -> bool:
        registration = self.registration
        return registration is not None and registration.state == RegistrationState.REGISTERED

    async def wait_registration_tried(self, within_s: float) -> None:
        """Until the first REGISTER got its answer (or failed), at most ``within_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                await self._registration_tried.wait()

    def _registration_event(self, problem: str = "") -> None:
        self._registration_problem = problem
        self._registration_changed.set()

    async def _keep_registered(self, registrar: tuple[str, int]) -> None:
        """Register, stay registered, and after a failure try again with doubling delays."""
        trunk = self.trunk
        component = f"{self.component} registration"
        where = f"registrar {registrar[0]}:{registrar[1]}"
        delay = trunk.register_retry_min_s
        while True:
            self._registration_changed.clear()
            try:
                address = await self.resolve(registrar)
            except ChannelDown as err:
                problem = str(err)
            else:
                registration = self._registration(address)
                registration.register()
                await self._registration_changed.wait()
                self._registration_tried.set()
                if registration.state == RegistrationState.REGISTERED:
                    self._report(component, HealthState.OK)
                    delay = trunk.register_retry_min_s
                    while registration.state == RegistrationState.REGISTERED:
                        self._registration_changed.clear()  # refreshes come and go...
                        await self._registration_changed.wait()  # ...until the binding is lost
                        if self._registration_problem:
                            break
                problem = self._registration_problem or "registration lost"
            self._registration_tried.set()
            self._report(component, HealthState.DOWN, f"REGISTER to {where} failed: {problem}")
            await asyncio.sleep(delay)  # backoff: 2, 4, 8... s up to register_retry_max_s
            delay = min(delay * 2, trunk.register_retry_max_s)

    def _registration(self, address: tuple[str, int]) -> Registration:
        if self.registration is None:
            aor = f"sip:{self.trunk.user}@{self.trunk.sip_domain}"
            registration = Registration(
                self.uac,
                aor,
                address,
                expires=self.trunk.register_expires,
                auth=self._auth,
                user_agent=USER_AGENT,
            )
            registration.on_registered = lambda _r: self._registration_event()
            registration.on_failed = lambda _r, code, phrase: self._registration_event(
                f"{code} {phrase}"
            )
            registration.on_expired = lambda _r: self._registration_event(
                "the binding expired without a refresh"
            )
            self.registration = registration
        self.registration.registrar = address
        return self.registration

    # --- addresses ---

    async def resolve(self, target: tuple[str, int]) -> tuple[str, int]:
        """``target`` with its host name resolved (cached ``DNS_TTL_S``); ChannelDown if not."""
        host, port = target
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            return target
        except OSError:
            pass
        now = time.monotonic()
        cached = self._resolved.get(target)
        if cached is not None and cached[1] > now:
            return cached[0]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as err:
            raise ChannelDown(f"cannot resolve {host} (DNS: {err.strerror or err})") from None
        family = self.transport.local_addr[0]
        wanted = socket.AF_INET6 if ":" in family else socket.AF_INET
        chosen = next((i for i in infos if i[0] == wanted), infos[0])
        address = (str(chosen[4][0]), int(chosen[4][1]))
        self._resolved[target] = (address, now + DNS_TTL_S)
        return address

    # --- calls ---

    def uri_for(self, target: str) -> str:
        """A SIP URI for a number or URI, on the trunk's domain when only a number is given."""
        if target.startswith(("sip:", "sips:")):
            return target
        return f"sip:{target}@{self.trunk.sip_domain}"

    def destination(self, to_uri: str) -> tuple[str, int]:
        """Where the INVITE goes (the proxy, else the URI's host), host names resolved when
        :meth:`resolve` was awaited for it."""
        target = self.trunk.proxy_addr or split_hostport(to_uri)
        cached = self._resolved.get(target)
        return cached[0] if cached is not None else target

    def send_invite(self, leg: OutgoingLeg) -> OutgoingCall:
        trunk = self.trunk
        user = trunk.caller_id or trunk.user or "povtor"
        from_uri = f"sip:{user}@{trunk.sip_domain}"
        call = self.uac.send_invite(
            from_uri,
            leg.to_uri,
            self.destination(leg.to_uri),
            leg.offer,
            user_agent=USER_AGENT,
            auth=self._auth,
        )
        self._legs[call.call_id] = leg
        return call

    def send_cancel(self, call: OutgoingCall) -> None:
        """CANCEL ``call``'s INVITE (it has had a provisional answer)."""
        self.uac.send_cancel(call)

    def abandon(self, call: OutgoingCall) -> None:
        """Stop retransmitting ``call``'s INVITE, which nobody has answered at all."""
        self.transport.abandon(call.invite)

    def send_refer(self, call: OutgoingCall, target: str) -> None:
        """REFER on ``call``'s dialog: the far end is asked to call ``target`` (a number on the
        trunk's domain, or a SIP URI); progress comes back as NOTIFYs."""
        self.uac.send_refer(call.dialog, self.uri_for(target), call.remote_addr)

    def send_bye(self, call: OutgoingCall) -> None:
        """BYE on ``call``'s dialog."""
        self.uac.send_bye(call.dialog, call.remote_addr)

    def ack_late_answer(self, call: OutgoingCall, response: SipResponse) -> None:
        """Confirm the dialog a 2xx created after our CANCEL, and ACK it (each time it comes)."""
        dialog = call.dialog
        to_addr = response.to_addr
        if to_addr is not None and to_addr.tag:
            dialog.remote_tag = to_addr.tag
        dialog.state = DialogState.CONFIRMED
        shim.send_2xx_ack(self.uac, call, response)

    def forget(self, leg: OutgoingLeg) -> None:
        """Stop routing to ``leg`` once late retransmissions can no longer come."""
        asyncio.get_running_loop().call_later(64 * self.trunk.t1_s, self._drop, leg.call_id)

    def _drop(self, call_id: str) -> None:
        self._legs.pop(call_id, None)
        # aiosipua drops its record of a call on a BYE, a CANCEL or a final answer, but not
        # when the INVITE timed out (timer B) or was abandoned unanswered: without this, each
        # call to a silent trunk would stay in its table for the worker's life
        if self._uac is not None:
            self._uac.remove_call(call_id)

    @property
    def active_legs(self) -> int:
        return sum(1 for leg in self._legs.values() if not leg.ended.is_set())

    # --- routing ---

    def _on_response(self, response: SipResponse) -> None:
        cseq = response.cseq
        status = response.status_code
        # a 401/407 is answered by aiosipua with credentials: the answer to that comes next
        register = cseq is not None and cseq.method.upper() == "REGISTER"
        if register and status >= 200 and status not in (401, 407):
            self._register_answered.set()
        leg = self._legs.get(response.call_id or "")
        if leg is not None:
            leg.on_response(response)

    def _on_timeout(self, request: SipRequest) -> None:
        registration = self.registration
        if registration is not None and request.call_id == registration.call_id:
            if request.method == "REGISTER":
                shim.stop_registration_timers(registration)  # its expiry would report it again
                host, port = registration.registrar
                self._registration_event(f"no response from {host}:{port}")
            return
        leg = self._legs.get(request.call_id or "")
        if leg is not None:
            leg.on_timeout(request)

    def _on_bye(self, call: IncomingCall, request: SipRequest) -> None:
        leg = self._legs.get(call.call_id)
        if leg is not None:
            leg.on_remote_bye()

    def _on_reinvite(self, wrapper: IncomingCall) -> None:
        leg = self._legs.get(wrapper.call_id)
        if leg is None or leg.ended.is_set():
            wrapper.reject(481, "Call/Transaction Does Not Exist")
            return
        leg.on_reinvite(wrapper)

    def _on_transfer_progress(self, call_id: str, status: int, reason: str) -> None:
        leg = self._legs.get(call_id)
        if leg is not None:
            leg.on_transfer_progress(status, reason)

    def _on_invite(self, call: IncomingCall) -> None:
        call.reject(480, "Temporarily Unavailable")

    def _on_info(self, request: SipRequest, addr: tuple[str, int]) -> None:
        assert self._uas is not None
        leg = self._legs.get(request.call_id or "")
        if leg is None or leg.call is None or leg.ended.is_set():
            shim.send_error(self._uas, request, 481, "Call/Transaction Does Not Exist")
            return
        if not shim.valid_in_dialog(self._uas, leg.call.dialog, request):
            return
        response = leg.call.dialog.create_response(request, 200, "OK")
        self.transport.send_reply(response)
        digit = dtmf_from_info(request.content_type or "", request.text)
        if digit is not None:
            leg.on_info_dtmf(digit)
