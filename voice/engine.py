"""The call engine: the one async API through which Povtor places phone calls.

    async with CallEngine(load_trunks(settings.sip), recorder_factory=...) as engine:
        call = await engine.start_call("+79990001122")
        if await call.wait_answered():
            await call.play(Path("hello.wav"))
            async for frame in call.frames(): ...      # 20 ms, 8 kHz 16-bit mono
            digit = await call.next_digit(timeout=5)
            await call.hangup()
        result = await call.wait_ended()               # outcome, SIP code, timings

Each trunk has its own SIP agent, concurrency semaphore and calls-per-second bucket; all
calls share one media clock. The scenario engine never sees SIP.

A trunk that sends nothing back (not even ``100 Trying``) before the ring timeout is a trunk
failure, not a client who did not pick up: the call ends ``failed`` with ``trunk_failure`` set
and the reason ("no response from HOST:PORT"), and the trunk is reported down on the health
board until its next answer. A server failure from the trunk (500, 502, 503, 504: overloaded
or down) is the same: ours, retried without using up the client's tries. A proxy whose name
does not resolve, or a trunk that must be registered and is not (``register_hold_calls``),
refuses the call with ``ChannelDown``.

A call whose trunk refuses REFER hands the client to a manager by a second call on the same
trunk (:meth:`CallEngine.bridge`): that call is not recorded on its own nor reported to
``on_finished``; the client's call records both people and ends when either hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from povtor.domain import OutcomeKind
from povtor.errors import ChannelDown, ChannelUnavailable, ConfigError, PovtorError
from povtor.health import HealthReporter, HealthState
from voice.bridge import Bridge, ringback
from voice.call import Call, CallResult, Recorder
from voice.limits import TrunkLimits
from voice.media import MediaClock, RtpStream, open_stream
from voice.recording import RecordingError
from voice.sip.agent import SipAgent
from voice.sip.leg import OutgoingLeg, first_set
from voice.sip.outcomes import TRUNK_FAILURE_CODES, outcome_for
from voice.sip.sdp import MediaParams, build_offer
from voice.sip.trunks import TrunkConfig
from voice.transfer import Transfer

logger = logging.getLogger(__name__)

RecorderFactory = Callable[[str], Recorder]  # call uuid -> a recorder for that call
_BYE_WAIT_S = 2.0


class _Trunk:
    def __init__(self, config: TrunkConfig, health: HealthReporter | None) -> None:
        self.config = config
        self.agent = SipAgent(config, health)
        self.limits = TrunkLimits(config.max_concurrent_calls, config.calls_per_second)


class CallEngine:
    """Places calls through the configured trunks; use as ``async with``."""

    def __init__(
        self,
        trunks: Mapping[str, TrunkConfig],
        *,
        recorder_factory: RecorderFactory | None = None,
        on_finished: Callable[[CallResult], Any] | None = None,
        health: HealthReporter | None = None,
    ) -> None:
        if not trunks:
            raise ConfigError("no SIP trunk configured")
        self.health = health
        self._trunks = {name: _Trunk(cfg, health) for name, cfg in trunks.items()}
        self._default = next(iter(self._trunks))
        self.recorder_factory = recorder_factory
        self.on_finished = on_finished
        self.clock = MediaClock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: list[_Trunk] = []

    async def __aenter__(self) -> CallEngine:
        await self.clock.__aenter__()
        try:
            for trunk in self._trunks.values():
                await trunk.agent.start()
                self._started.append(trunk)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for trunk in self._started:
            await trunk.agent.close()
        self._started.clear()
        await self.clock.__aexit__(None, None, None)

    def trunk(self, name: str | None = None) -> TrunkConfig:
        return self._get(name).config

    def agent(self, name: str | None = None) -> SipAgent:
        return self._get(name).agent

    def _get(self, name: str | None) -> _Trunk:
        try:
            return self._trunks[name or self._default]
        except KeyError:
            raise ConfigError(f"unknown trunk {name!r}; known: {sorted(self._trunks)}") from None

    @property
    def active_calls(self) -> int:
        return sum(t.limits.active for t in self._trunks.values())

    async def start_call(
        self,
        target: str,
        *,
        trunk: str | None = None,
        ring_timeout: float | None = None,
        record: bool = True,
        call_uuid: str | None = None,
        line_wait_s: float | None = None,
    ) -> Call:
        """Dial ``target`` (a number or SIP URI); waits for trunk capacity (at most
        ``line_wait_s``, then ChannelUnavailable), not for an answer."""
        runtime = self._get(trunk)
        config = runtime.config
        agent = runtime.agent
        if config.register_enabled and config.register_hold_calls and not agent.registered:
            await agent.wait_registration_tried(64 * config.t1_s)  # the first one, at start
            if not agent.registered:
                raise ChannelDown(
                    f"trunk {config.name} is not registered: calls held until it is "
                    "(POVTOR_SIP_REGISTER_HOLD_CALLS)"
                )
        to_uri = agent.uri_for(target)
        try:
            await agent.resolve(agent.destination(to_uri))
        except ChannelDown as err:
            self._report(config.name, HealthState.DOWN, str(err))
            raise ChannelDown(f"trunk {config.name}: {err}") from None
        try:
            async with asyncio.timeout(line_wait_s):
                await runtime.limits.acquire()
        except TimeoutError:
            raise ChannelUnavailable(f"trunk {config.name}: no free line") from None
        try:
            stream = await open_stream(
                RtpStream(symmetric=config.symmetric_rtp),
                config.bind_host,
                config.rtp_port_range,
            )
        except OSError as err:
            runtime.limits.release()
            raise ChannelUnavailable(f"trunk {config.name}: no RTP port: {err}") from err
        offer = build_offer(
            config.advertised_host,
            stream.local_port,
            codecs=config.codecs,
            dtmf_payload_type=config.dtmf_payload_type,
        )
        leg = OutgoingLeg(agent, to_uri, offer)
        call = Call(call_uuid or uuid.uuid4().hex, config.name, leg, stream)
        call.bridge_to = self.bridge
        call.transfer_by = config.transfer_by
        try:
            leg.start()
        except Exception:
            stream.close()
            runtime.limits.release()
            raise
        recorder = self.recorder_factory if record else None
        self._own(self._supervise(runtime, call, ring_timeout, recorder))
        return call

    def _own(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task the engine cancels and awaits when it closes."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def bridge(self, call: Call, target: str, wait_s: float) -> Transfer:
        """Call ``target`` on ``call``'s trunk and join the two calls once it answers (at most
        ``wait_s`` for a free line and for the answer); connected, they stay joined until one
        side hangs up (see voice.bridge)."""

        def failed(reason: str, code: int | None = None) -> Transfer:
            return Transfer(target, "failed", code, reason, route="bridge")

        try:
            manager = await self.start_call(
                target,
                trunk=call.trunk,
                ring_timeout=wait_s,
                record=False,
                call_uuid=f"{call.uuid}-manager",
                line_wait_s=wait_s,
            )
        except PovtorError as err:
            return failed(str(err))
        manager.bridge_leg = True
        manager.bridge_to = None
        call.stream.play(ringback(wait_s))  # the client hears the manager's phone ring
        try:
            await first_set(None, manager.leg.answered, manager.done, call.leg.ended)
        finally:
            call.stop_playback()
        if call.leg.ended.is_set() or call.done.is_set():
            await manager.hangup()
            return Transfer(target, "ended", reason="the client hung up", route="bridge")
        if not await manager.wait_answered():
            result = await manager.wait_ended()
            return failed(result.reason, result.sip_code)
        bridge = Bridge(call, manager)
        bridge.join()
        call.bridge = bridge
        self._own(bridge.hold())
        logger.info("Call %s: bridged to the manager", call.uuid)
        return Transfer(target, "connected", 200, "bridged through Povtor", route="bridge")

    async def _supervise(
        self,
        runtime: _Trunk,
        call: Call,
        ring_timeout: float | None,
        recorder_factory: RecorderFactory | None,
    ) -> None:
        config = runtime.config
        leg, stream = call.leg, call.stream
        ring_timed_out = False
        recorder: Recorder | None = None
        try:
            limit = ring_timeout if ring_timeout is not None else config.ring_timeout_s
            if not await first_set(limit, leg.answered, leg.ended, call.hangup_requested):
                ring_timed_out = True
            if not leg.answered.is_set():
                await leg.cancel(wait=64 * config.t1_s)
            if leg.answered.is_set() and not leg.ended.is_set():
                if leg.media is None:
                    await leg.bye(_BYE_WAIT_S)
                else:
                    recorder = recorder_factory(call.uuid) if recorder_factory else None
                    await self._talk(call, leg.media, recorder, config)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if leg.answered.is_set():
                    leg.agent.send_bye(leg.call)  # type: ignore[arg-type]
            raise
        finally:
            self.clock.remove(stream)
            stream.close()
            runtime.limits.release()
            info = None
            if recorder is not None:
                try:
                    info = await recorder.finish()
                except RecordingError as err:  # a full disk: the call and its words go on
                    self._recordings(HealthState.DEGRADED, err)
                except Exception:
                    logger.exception("Recording of call %s could not be finished", call.uuid)
                else:
                    self._recordings(HealthState.OK)
            call.result = self._result(call, ring_timed_out, info)
            self._trunk_health(runtime, call)
            call._close_keys()
            call.done.set()
        if self.on_finished is not None and not call.bridge_leg:
            try:
                outcome = self.on_finished(call.result)
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception:
                logger.exception("on_finished failed for call %s", call.uuid)

    async def _talk(
        self, call: Call, media: MediaParams, recorder: Recorder | None, config: TrunkConfig
    ) -> None:
        leg, stream = call.leg, call.stream
        stream.configure(
            payload_type=media.payload_type,
            codec=media.codec,
            remote=media.remote,
            dtmf_payload_types=media.dtmf_payload_types,
        )
        stream.dtmf_send_type = media.dtmf_send_type

        def moved(params: MediaParams) -> None:
            stream.dtmf_send_type = params.dtmf_send_type
            stream.configure(
                payload_type=params.payload_type,
                codec=params.codec,
                remote=params.remote,
                dtmf_payload_types=params.dtmf_payload_types,
            )

        leg.on_media_update = moved
        stream.recorder = recorder
        self.clock.add(stream)
        timeout = config.rtp_timeout_s
        answered_at = time.monotonic()
        while not leg.ended.is_set():
            check = min(1.0, timeout / 4) if timeout > 0 else None
            if await first_set(check, leg.ended, call.hangup_requested):
                break
            now = time.monotonic()
            last = stream.last_rx
            silent_for = now - (last if last is not None else answered_at)
            if timeout > 0 and silent_for >= timeout:
                leg.reason = "No audio from the client (RTP timeout)"
                logger.info("Call %s: client RTP stopped, hanging up", call.uuid)
                break
        if not leg.ended.is_set():
            reason = leg.reason
            await leg.bye(_BYE_WAIT_S)
            if reason.startswith("No audio"):
                leg.reason = reason
        elif leg.remote_hangup:
            call.hung_up_mid_prompt = stream.playing
        stream.stop_playback()

    def _report(self, trunk: str, state: HealthState, reason: str = "") -> None:
        if self.health is not None:
            self.health.report(f"trunk {trunk}", state, reason)

    def _recordings(self, state: HealthState, err: RecordingError | None = None) -> None:
        """A recording that cannot be written is said once (on the board) per change, not
        per call; the reason names the cause, not the call."""
        if self.health is None:
            if err is not None:
                logger.error("%s", err)
            return
        cause = err.__cause__ if err is not None else None
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        reason = "" if err is None else f"call recordings cannot be written: {why}"
        self.health.report("recordings", state, reason)

    def _trunk_health(self, runtime: _Trunk, call: Call) -> None:
        leg, result = call.leg, call.result
        assert result is not None
        if result.trunk_failure:
            self._report(runtime.config.name, HealthState.DOWN, result.reason)
        elif leg.provisional.is_set() or (leg.final_code is not None and not leg.cancelled):
            self._report(runtime.config.name, HealthState.OK)  # the trunk answered something

    def _result(self, call: Call, ring_timed_out: bool, recording: Any) -> CallResult:
        leg, stream = call.leg, call.stream
        config = self._get(call.trunk).config
        # nothing at all came back (no 100 Trying) before we gave up: the trunk, not the client
        silent = (
            not leg.provisional.is_set()
            and not leg.answered.is_set()
            and leg.final_code in (None, 487)
            and not call.hangup_requested.is_set()
            and (ring_timed_out or leg.final_code is None)
        )
        answered = leg.answered.is_set() and leg.media is not None
        t0 = leg.started_at
        end = leg.ended_at or time.monotonic()
        talk = (end - leg.answered_at) if answered and leg.answered_at is not None else 0.0
        early = (
            answered
            and leg.remote_hangup
            and (call.hung_up_mid_prompt or talk < config.early_hangup_s)
        )
        outcome = outcome_for(
            answered=answered,
            final_code=leg.final_code,
            ring_timeout=ring_timed_out and not call.hangup_requested.is_set(),
            client_hung_up_early=early,
        )
        if leg.answered.is_set() and leg.media is None:
            reason = f"Unusable media: {leg.media_error}"
        else:
            reason = leg.reason
        sip_code = leg.final_code
        if silent:
            host, port = leg.agent.destination(leg.to_uri)
            outcome = OutcomeKind.FAILED
            reason = f"no response from {host}:{port} (trunk {config.name})"
            sip_code = None
        refused = not answered and sip_code in TRUNK_FAILURE_CODES
        if refused:  # the trunk refused the call (503 while overloaded or down): ours
            reason = f"{sip_code} {leg.reason} (trunk {config.name})".replace("  ", " ")
        return CallResult(
            call_uuid=call.uuid,
            trunk=call.trunk,
            outcome=outcome,
            sip_code=sip_code,
            reason=reason,
            started_at=call.started_at,
            answered_at=_wall(call.started_at, t0, leg.answered_at),
            ended_at=_wall(call.started_at, t0, end) or datetime.now(UTC),
            ring_s=None if leg.ringing_at is None else round(leg.ringing_at - t0, 3),
            setup_s=round((leg.answered_at or end) - t0, 3),
            duration_s=round(talk, 3),
            hung_up_by=None if not answered else ("client" if leg.remote_hangup else "robot"),
            dtmf=call.dtmf,
            recording=recording,
            packets_sent=stream.packets_sent,
            packets_received=stream.packets_received,
            packets_lost=stream.packets_lost,
            trunk_failure=silent or refused,
        )


def _wall(started: datetime, t0: float, t: float | None) -> datetime | None:
    if t is None:
        return None
    return datetime.fromtimestamp(started.timestamp() + (t - t0), UTC)
