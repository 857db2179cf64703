"""CallChannel: the outreach engine's way to reach a client by phone with a voice robot.

``execute`` dials the client's primary number through the call engine, runs the purpose's
scenario when the client answers, and reports an :class:`Outcome` whose ``data`` holds what was
learnt (score, intent, opt-out, free answers with reason categories, keys pressed, what the
robot said and when). With a call store the call is kept (and its recording archived); with a
history store the NPS answer and an opt-out are written to the client's history, as the
Telegram channel does. One execution (attempt key + number) is one call: run again, it answers
from the call store instead of dialling twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any, Protocol

from povtor.domain import Attempt, ChannelKind, Client, Outcome, OutcomeKind, Purpose
from povtor.errors import ChannelDown, ChannelStopping, ModelError, PovtorError
from povtor.logs import mask_phone
from povtor.ports import HistoryStore, SpeechSynth
from povtor.settings import Settings
from voice.amd import AmdConfig
from voice.call import CallResult
from voice.call_outcome import history_writes, outcome_kind
from voice.call_records import CallState, HangupBy
from voice.call_store import CallStore
from voice.listen import Listener, RecognizerFactory, VoskRecognizers
from voice.models import resolve_model
from voice.recording_archive import archive_recording
from voice.scenario import Scenario, load_scenarios
from voice.scenario_runner import Conversation, ScenarioRunner, TalkingCall, prepare_prompts
from voice.storage import RecordingStorage
from voice.synth import Synths
from voice.vad_silero import detectors_for

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("1b0f7c53-5e0e-4a52-9a4e-43b1f3d4c0a1")
_HANGUP_WAIT_S = 5.0
CLOSING_PHRASE = (
    "Извините, нам нужно завершить разговор. Мы перезвоним вам в другой раз. До свидания!"
)

Archiver = Callable[[Any, Any], Awaitable[Any]]  # (RecordingInfo, CallRecord) -> stored record


class PlacedCall(TalkingCall, Protocol):
    async def wait_answered(self) -> bool: ...

    async def hangup(self) -> CallResult: ...

    async def wait_ended(self) -> CallResult: ...


class Dialer(Protocol):
    """What the channel needs of voice.engine.CallEngine."""

    async def start_call(
        self,
        target: str,
        *,
        trunk: str | None = None,
        ring_timeout: float | None = None,
        record: bool = True,
        call_uuid: str | None = None,
    ) -> Any: ...

    def trunk(self, name: str | None = None) -> Any: ...


def call_uuid_for(attempt: Attempt) -> str:
    """The same execution of an attempt always names the same call."""
    return uuid.uuid5(_NAMESPACE, f"{attempt.idempotency_key}#{attempt.attempt_no}").hex


class CallChannel:
    """Implements ``povtor.ports.Channel`` for phone calls."""

    kind = ChannelKind.CALL

    def __init__(
        self,
        engine: Dialer,
        scenarios: Mapping[Purpose, Scenario],
        synth: SpeechSynth | Mapping[Purpose, SpeechSynth],
        *,
        listener: Listener | None = None,
        call_store: CallStore | None = None,
        history: HistoryStore | None = None,
        archive: Archiver | None = None,
        company: str = "нашей компании",
        worker_id: str = "worker",
        trunk: str | None = None,
        ring_timeout_s: float | None = None,
        max_call_s: float = 300.0,
        amd: AmdConfig | None = None,
        transfer_to: str | None = None,
        transfer_wait_s: float = 30.0,
    ) -> None:
        self.engine = engine
        self.scenarios = dict(scenarios)
        # one voice for all, or a scenario's own (its `speech` options)
        self.synths: dict[Purpose, SpeechSynth] = (
            dict(synth) if isinstance(synth, Mapping) else dict.fromkeys(self.scenarios, synth)
        )
        self.listener = listener
        self.call_store = call_store
        self.history = history
        self.archive = archive
        self.company = company
        self.worker_id = worker_id
        self.trunk = trunk
        self.ring_timeout_s = ring_timeout_s
        self.max_call_s = max_call_s
        self.amd = amd  # answering-machine detection (None: every answer is a person)
        self.transfer_to = (
            transfer_to  # where `transfer` steps hand the client (a scenario's own wins)
        )
        self.transfer_wait_s = transfer_wait_s
        self.closing_phrase = CLOSING_PHRASE
        self._draining = asyncio.Event()

    def begin_drain(self) -> None:
        """The worker is stopping: dial no one new; calls in progress say the closing phrase
        and hang up (``povtor.ports.Draining``)."""
        self._draining.set()

    async def warm(self) -> None:
        """Load the live speech model and the voices now rather than before the first call."""
        load = getattr(self.listener.recognizers if self.listener else None, "load", None)
        if load is not None:
            await asyncio.to_thread(load)
        for synth in {id(s): s for s in self.synths.values()}.values():
            voice = getattr(synth, "piper", None)  # a Piper voice loads in about two seconds
            if voice is not None:
                await asyncio.to_thread(voice.session)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()

    async def execute(self, attempt: Attempt, client: Client) -> Outcome:
        if client.opted_out:
            return Outcome(OutcomeKind.FAILED, detail="client opted out")
        if not client.phones:
            return Outcome(OutcomeKind.UNREACHABLE, detail="no phone number")
        if self._draining.is_set():
            raise ChannelStopping("the worker is stopping: not dialled")
        phone = client.phones[0]
        call_uuid = call_uuid_for(attempt)
        ref = f"call:{call_uuid}"
        repeated = await self._already_placed(call_uuid, ref)
        if repeated is not None:
            return repeated
        values = await self.template_values(attempt, client)
        try:
            await prepare_prompts(
                self.scenarios[attempt.purpose], self.synths[attempt.purpose], values
            )
        except PovtorError as err:
            return Outcome(OutcomeKind.FAILED, detail=f"speech synthesis failed: {err}", ref=ref)
        if self._draining.is_set():  # stopped while the prompts were prepared
            raise ChannelStopping("the worker is stopping: not dialled")
        if self.call_store is not None:
            try:
                await self.call_store.create_call(
                    call_uuid,
                    trunk=str(self.engine.trunk(self.trunk).name),
                    target=phone,
                    worker_id=self.worker_id,
                    client_id=client.id,
                    attempt_id=attempt.id,
                )
            except Exception as err:
                log.exception("Call %s not stored; not dialling", call_uuid)
                return Outcome(OutcomeKind.FAILED, detail=f"call store: {err}", ref=ref)
        if self._draining.is_set():  # the stop came while the call was being stored
            await self._finish_failed(call_uuid, "not dialled: the worker was stopping")
            return Outcome(OutcomeKind.INTERRUPTED, detail="not dialled: worker stopping", ref=ref)
        log.info("Calling %s (%s, call %s)", mask_phone(phone), attempt.purpose, call_uuid)
        try:
            call = await self.engine.start_call(
                phone, trunk=self.trunk, ring_timeout=self.ring_timeout_s, call_uuid=call_uuid
            )
        except ChannelDown as err:  # the trunk, not the client: retried, not counted
            detail = f"trunk failure: {err}"
            log.info("Call %s not placed, retried later: %s", call_uuid, err)
            await self._finish_failed(call_uuid, detail)
            return Outcome(OutcomeKind.FAILED, detail=detail, ref=ref, ours=True)
        except PovtorError as err:
            await self._finish_failed(call_uuid, str(err))
            return Outcome(OutcomeKind.FAILED, detail=str(err), ref=ref)
        try:
            conversation = await self._talk(call, attempt, values, call_uuid)
            result = await call.wait_ended()
        except asyncio.CancelledError:  # cut short (drain timeout): the line is already closed
            await self._store_cut_short(call_uuid)
            raise
        kind = outcome_kind(result.outcome, conversation)
        if conversation is not None and conversation.finished == "closed_on_stop":
            kind = OutcomeKind.INTERRUPTED  # tried again later; what was said is kept
        data = self._data(result, conversation)
        await self._store(result, kind, conversation)
        if conversation is not None and self.history is not None:
            await self._write_history(attempt, client, conversation, call_uuid)
        return Outcome(
            kind,
            detail=f"trunk failure: {result.reason}" if result.trunk_failure else result.reason,
            sip_code=result.sip_code,
            finished_at=result.ended_at,
            data=data,
            ref=ref,
            ours=result.trunk_failure,
        )

    async def _talk(
        self, call: PlacedCall, attempt: Attempt, values: Mapping[str, Any], call_uuid: str
    ) -> Conversation | None:
        runner: ScenarioRunner | None = None
        try:
            if not await call.wait_answered():
                return None
            if self.call_store is not None:
                with _logged(f"call {call_uuid}: answer time not stored"):
                    await self.call_store.mark_answered(call_uuid)
            runner = ScenarioRunner(
                self.scenarios[attempt.purpose],
                call,
                self.synths[attempt.purpose],
                values,
                listener=self.listener,
                amd=self.amd,
                transfer_to=self.transfer_to,
                transfer_wait_s=self.transfer_wait_s,
            )
            try:
                async with asyncio.timeout(self.max_call_s):
                    await self._converse(runner, call, call_uuid, self.synths[attempt.purpose])
            except TimeoutError:
                log.warning("Call %s: talk over %.0f s, hanging up", call_uuid, self.max_call_s)
            bridge = getattr(call, "bridge", None)  # voice.call.Call joined to a manager's call
            if bridge is not None and runner.result.finished == "transferred":
                await call.wait_ended()  # the client and the manager talk until one hangs up
                await bridge.parted.wait()
                runner.result.data["transfer"].update(ended_by=bridge.ended_by)
            await call.hangup()
            return runner.result
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # shutting down: never leave the line open
                await asyncio.wait_for(asyncio.shield(call.hangup()), _HANGUP_WAIT_S)
            raise
        finally:
            if runner is not None:
                await runner.close()

    async def _converse(
        self, runner: ScenarioRunner, call: PlacedCall, call_uuid: str, synth: SpeechSynth
    ) -> None:
        """The scenario, unless the worker starts stopping: then the robot stops where it is,
        says the closing phrase and the call ends politely (within the drain window)."""
        talk = asyncio.ensure_future(runner.run())
        drain = asyncio.ensure_future(self._draining.wait())
        try:
            await asyncio.wait({talk, drain}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            talk.cancel()
            raise
        finally:
            drain.cancel()
        if talk.done():
            talk.result()  # the scenario's own errors surface here
            return
        call.stop_playback()
        talk.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await talk
        runner.result.finished = "closed_on_stop"
        log.info("Call %s: the worker is stopping, closing politely", call_uuid)
        with _logged(f"call {call_uuid}: closing phrase not said"):
            await call.play(await synth.synth(self.closing_phrase))

    def _data(self, result: CallResult, conversation: Conversation | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "call_uuid": result.call_uuid,
            "dtmf": result.dtmf,
            "duration_s": result.duration_s,
            "hung_up_by": result.hung_up_by,
            "engine_outcome": result.outcome.value,
        }
        if conversation is not None:
            data.update(conversation.data)
            data.update(
                prompts=conversation.prompts,
                answers=conversation.answers,
                finished=conversation.finished,
                live_asr=self.listener is not None and self.listener.recognises,
            )
        return data

    async def _already_placed(self, call_uuid: str, ref: str) -> Outcome | None:
        if self.call_store is None:
            return None
        try:
            record = await self.call_store.get_call(call_uuid)
        except PovtorError:
            return None
        if record.state is CallState.ACTIVE:
            detail = "this execution's call is still active (another worker?)"
            return Outcome(OutcomeKind.INTERRUPTED, detail=detail, ref=ref)
        kind = record.outcome or OutcomeKind.INTERRUPTED
        data = {"call_uuid": call_uuid, "dtmf": record.dtmf, "repeated": True}
        return Outcome(kind, detail="already called", sip_code=record.sip_code, data=data, ref=ref)

    async def _store_cut_short(self, call_uuid: str) -> None:
        """The execution was cancelled after the call was placed (the worker's drain window
        ran out): the call still ends in the store as interrupted rather than staying active
        until the next start's recovery. Shielded, so the cancellation cannot cut the write."""
        if self.call_store is None:
            return
        finish = self.call_store.finish_call(
            call_uuid,
            outcome=OutcomeKind.INTERRUPTED,
            sip_reason="cut short: the worker was stopping",
            hangup_by=HangupBy.ROBOT,
        )
        with _logged(f"call {call_uuid}: end not stored after the stop"):
            await asyncio.wait_for(asyncio.shield(finish), _HANGUP_WAIT_S)

    async def _finish_failed(self, call_uuid: str, reason: str) -> None:
        if self.call_store is not None:
            with _logged(f"call {call_uuid}: failure not stored"):
                await self.call_store.finish_call(
                    call_uuid,
                    outcome=OutcomeKind.FAILED,
                    sip_reason=reason,
                    hangup_by=HangupBy.NONE,
                )

    async def _store(
        self, result: CallResult, kind: OutcomeKind, conversation: Conversation | None
    ) -> None:
        if self.call_store is None:
            return
        store = self.call_store
        record = None
        with _logged(f"call {result.call_uuid}: end not stored"):
            record = await store.finish_call(
                result.call_uuid,
                outcome=kind,
                sip_code=result.sip_code,
                sip_reason=result.reason[:255],
                hangup_by=HangupBy(result.hung_up_by or "none"),
                dtmf=result.dtmf,
                ended_at=result.ended_at,
                robot_text=conversation.prompts if conversation is not None else None,
            )
        if record is not None and result.recording is not None and self.archive is not None:
            # the file stays in the incoming folder; recovery archives it once storage is back
            with _logged(f"call {result.call_uuid}: recording not archived (kept locally)"):
                await self.archive(result.recording, record)

    async def _write_history(
        self, attempt: Attempt, client: Client, conversation: Conversation, call_uuid: str
    ) -> None:
        assert self.history is not None
        for write in history_writes(attempt.purpose, client.id, conversation.data, call_uuid):
            with _logged(f"call {call_uuid}: history not updated"):
                await write(self.history)

    async def template_values(self, attempt: Attempt, client: Client) -> dict[str, Any]:
        """What scenario texts may use (see voice.scenario.TEMPLATE_VALUES)."""
        return await template_values(
            attempt.purpose, client, self.company, self.history, attempt.payload
        )


class _logged(contextlib.AbstractContextManager[None]):
    """Log (with traceback) and go on: the call happened, its bookkeeping may still fail."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __exit__(self, kind: Any, err: BaseException | None, tb: Any) -> bool:
        if isinstance(err, Exception):
            log.error("%s", self.what, exc_info=err)
            return True
        return False


async def template_values(
    purpose: Purpose,
    client: Client,
    company: str,
    history: HistoryStore | None = None,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What scenario texts may use for one client (see voice.scenario.TEMPLATE_VALUES)."""
    payload = payload or {}
    values: dict[str, Any] = {
        "name": client.name,
        "company": company,
        "order_date": "",
        "items": "",
        "category": str(payload.get("category") or ""),
        "days_since": payload.get("silence_days") or "",
    }
    if history is not None and purpose is not Purpose.NPS:
        with _logged(f"client {client.id}: last order not read"):
            orders = await history.list_orders(client.id, limit=1)
            if orders:
                order = orders[0]
                values["order_date"] = order.placed_at.date()  # said in words
                values["items"] = ", ".join(i.name for i in order.items[:3])
                values["category"] = values["category"] or (order.items[0].category or "")
    if not values["order_date"] and payload.get("order_date"):
        with _logged("order_date in the attempt payload is not a date"):
            values["order_date"] = date.fromisoformat(str(payload["order_date"]))
    if not values["items"] and payload.get("items"):
        items = payload["items"]
        values["items"] = ", ".join(map(str, items[:3])) if isinstance(items, list) else items
    return values


def build_listener(settings: Settings, recognizers: RecognizerFactory | None = None) -> Listener:
    """Live listening: Vosk when a model is installed, else end-of-speech detection only."""
    threads = settings.call.listen_threads or settings.sip.max_concurrent_calls
    if recognizers is None and settings.call.live_asr:
        choice = settings.call.live_model or settings.asr.model
        try:
            recognizers = VoskRecognizers(resolve_model(choice, settings.models_dir))
        except ModelError as err:
            log.warning("No live speech recognition (%s): the robot relies on the keypad", err)
    detectors = detectors_for(settings.call.vad, settings.call.vad_threshold)
    return Listener(recognizers, threads=threads, detectors=detectors)


def build_call_channel(
    settings: Settings,
    engine: Dialer,
    call_store: CallStore | None = None,
    synth: SpeechSynth | None = None,
    listener_factory: RecognizerFactory | None = None,
    *,
    worker_id: str,
    history: HistoryStore | None = None,
    storage: RecordingStorage | None = None,
) -> CallChannel:
    """The composition root's way to make the call channel (``close()`` it at shutdown).

    ``listener_factory`` makes one streaming recogniser per answer (default: Vosk over
    ``POVTOR_CALL_LIVE_MODEL`` or ``POVTOR_ASR_MODEL``); ``storage`` with ``call_store``
    archives each recording as soon as its call ends.
    """
    options = settings.call
    archive: Archiver | None = None
    if call_store is not None and storage is not None:
        store, where = call_store, storage

        async def archive(info: Any, record: Any) -> Any:
            return await archive_recording(store, where, info, record)

    scenarios = load_scenarios(options.scenarios_dir, options.disclosure)
    if synth is None:
        synths = Synths(settings)
        by_purpose = {p: synths.for_speech(s.speech) for p, s in scenarios.items()}
    return CallChannel(
        engine,
        scenarios,
        synth or by_purpose,
        listener=build_listener(settings, listener_factory),
        call_store=call_store,
        history=history,
        archive=archive,
        company=options.company_name or settings.telegram.company_name,
        worker_id=worker_id,
        max_call_s=options.max_call_s,
        amd=AmdConfig() if options.detect_machines else None,
        transfer_to=options.transfer_to or None,
        transfer_wait_s=options.transfer_wait_s,
    )
