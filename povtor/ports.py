"""Ports: the Protocols through which subsystems talk to each other.

The heart defines them; adapters (``crm_sync``, ``bot``, ``voice``, ``outreach``...)
implement them; ``app.runtime`` wires implementations to consumers.
No subsystem reaches into another's tables or internals.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from povtor.domain import (
    Attempt,
    AttemptState,
    Candidate,
    ChannelKind,
    Client,
    ConsentChannel,
    ContactKind,
    EventKind,
    NpsGroup,
    NpsResponse,
    NpsSummary,
    Order,
    Outcome,
    OutcomeKind,
    Purpose,
    ReasonCategory,
    Task,
    TaskStatus,
    TimelineEvent,
)
from povtor.health import ComponentHealth
from povtor.suppression import SuppressionList
from povtor.work import DeadLetter


@runtime_checkable
class Channel(Protocol):
    """A way to reach a client: executes one attempt and reports what came of it."""

    kind: ChannelKind

    async def execute(self, attempt: Attempt, client: Client) -> Outcome: ...


@runtime_checkable
class Draining(Protocol):
    """A channel that can wind down when the worker stops: no new contact starts (execute
    raises ``ChannelStopping`` before reaching the client) and contacts in progress close
    politely (a call says goodbye and hangs up)."""

    def begin_drain(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NewEvent:
    client_id: int
    kind: EventKind
    summary: str
    at: datetime | None = None  # defaults to now
    ref: str | None = None
    data: Mapping[str, Any] | None = None
    dedup_key: str | None = None  # the event is appended once per key


@dataclass(frozen=True, slots=True)
class NewNpsResponse:
    client_id: int
    score: int | None
    channel: ChannelKind
    reason_text: str | None = None
    reason_category: ReasonCategory | None = None
    source_kind: str | None = None
    source_id: str | None = None
    answered_at: datetime | None = None
    dedup_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    client_id: int | None
    kind: str
    title: str
    due_at: datetime
    assignee: str | None = None
    source_ref: str | None = None
    note: str | None = None
    dedup_key: str | None = None


@dataclass(frozen=True, slots=True)
class NpsQuery:
    """Filters of an NPS answer list; ``None`` means any."""

    group: NpsGroup | None = None  # by score; answers without a score match no group
    category: ReasonCategory | None = None
    since: datetime | None = None  # answered_at >= since
    until: datetime | None = None  # answered_at < until
    client_id: int | None = None


@dataclass(frozen=True, slots=True)
class NpsCursor:
    """Where a page of NPS answers ended: the last answer's time and id."""

    answered_at: datetime
    id: int


class ClientLookup(Protocol):
    """Many clients in one round trip (the dispatcher loads a whole claimed batch at once)."""

    async def get_clients(self, client_ids: Sequence[int]) -> Mapping[int, Client]:
        """The clients among ``client_ids`` that exist, by id (unknown ids left out)."""
        ...


@dataclass(frozen=True, slots=True)
class ErasureSubject:
    """A client to erase, with what other subsystems may know them by: the store's id, its
    phones (E.164) and its Telegram chat, read from the store before the store erases it."""

    client_id: int
    phones: tuple[str, ...] = ()
    chat_id: int | None = None


class ClientErasure(Protocol):
    """A subsystem that keeps rows about clients in its own tables (by client id, with no
    foreign key to the store's clients) removes them when those clients are erased: deleted from
    the store, or a data subject's request to erase their personal data (152-FZ). Safe to call
    again for the same clients (a retry after a failure part-way removes what is left)."""

    async def erase_clients(self, subjects: Sequence[ErasureSubject]) -> Mapping[str, int]:
        """Remove what this subsystem keeps about ``subjects``; how many of each kind of its
        records went, by a short plural noun ("attempts", "calls", "files"; unknown ids: 0)."""
        ...


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """A request to erase one client (152-FZ): pending until every subsystem confirmed.
    ``removed``: what each subsystem that confirmed removed; holds no personal data."""

    id: int
    client_id: int
    requested_at: datetime
    requested_by: str  # "cli:HOST" or "dashboard:LOGIN"
    state: str  # "pending" or "done"
    removed: Mapping[str, Mapping[str, int]]
    finished_at: datetime | None = None
    tries: int = 0
    error: str | None = None  # the last failure, masked


class ClientEraser(Protocol):
    """Erasing one client everywhere now (the dashboard's admins; implemented by
    :class:`povtor.erasure.Erasure`)."""

    async def erase_client(self, client_id: int, *, by: str) -> ErasureRequest:
        """The request, done, or pending with the error of the part that failed (it is tried
        again later). Raises NotFound for an unknown id."""
        ...


class SuppressionSource(Protocol):
    """The suppression list of erased clients, for the parts that must not contact or
    re-create them (the import, outreach planning)."""

    async def suppression_list(self) -> SuppressionList: ...


class ErasureLedger(SuppressionSource, Protocol):
    """Erasure requests, their progress and the suppression list (keyed hashes of the erased
    clients' phones and codes, no personal data in clear); implemented by crm_sync."""

    async def open_request(
        self, client_id: int, *, by: str, suppress: Sequence[str]
    ) -> ErasureRequest:
        """A new pending request (or the client's pending one), with the ``suppress`` digests
        added to the suppression list in the same transaction."""
        ...

    async def suppress(self, digests: Sequence[str]) -> None:
        """Add digests to the suppression list (a request about no known client)."""
        ...

    async def pending(self, client_ids: Sequence[int] | None = None) -> Sequence[ErasureRequest]:
        """Pending requests (of these clients, or all), oldest first."""
        ...

    async def confirm(self, request_id: int, part: str, removed: Mapping[str, int]) -> None:
        """``part`` erased its records of the request's client."""
        ...

    async def failed(self, request_id: int, error: str) -> None:
        """A try ended in ``error`` (masked); the request stays pending."""
        ...

    async def finish(self, request_id: int) -> ErasureRequest:
        """Every part confirmed: the request is done."""
        ...

    async def suppression_key(self) -> bytes:
        """The key of the suppression digests (``POVTOR_ERASURE_KEY``, else generated once and
        kept in the database)."""
        ...


class ClientDirectory(ClientLookup, Protocol):
    """Finding clients. Reads only; a lookup that finds nothing says so (None or left out)
    except ``get_client``, which is for ids known to exist."""

    async def get_client(self, client_id: int) -> Client:
        """Raises NotFound for an unknown id."""
        ...

    async def client_names(self, client_ids: Sequence[int]) -> Mapping[int, str]:
        """The names of the clients among ``client_ids`` that exist (a list's links, in one
        read of one table)."""
        ...

    async def find_client(self, external_id: str) -> Client | None:
        """By the code of the business's own system (exact match)."""
        ...

    async def find_client_by_phone(self, phone_e164: str) -> Client | None:
        """By a phone number in E.164; the oldest client when several share it."""
        ...

    async def find_client_by_chat(self, chat_id: int) -> Client | None:
        """By the Telegram chat linked to the client."""
        ...

    async def search_clients(
        self, query: str = "", *, after_id: int | None = None, limit: int = 50
    ) -> Sequence[Client]:
        """Clients by name (substring, any case), phone digits or exact external id.

        Keyset pages by ascending id: the next page starts ``after_id`` = the last id shown.
        """
        ...


class ClientSettings(Protocol):
    """What a client has said about being contacted, and where they can be reached. An opt-out
    or consent change is also an event in the client's timeline. All raise NotFound for an
    unknown id."""

    async def set_opt_out(self, client_id: int, opted_out: bool, *, source: str) -> Client: ...

    async def set_consent(
        self,
        client_id: int,
        channel: ConsentChannel,
        granted: bool,
        *,
        source: str,
        kind: ContactKind = ContactKind.SERVICE,
        at: datetime | None = None,
        by: str | None = None,
    ) -> Client:
        """A consent (or refusal) for one channel and kind of contact, with its history in
        the timeline; ``at``: when the client gave it, ``by``: who recorded it."""
        ...

    async def link_telegram(self, client_id: int, chat_id: int | None) -> Client:
        """Link a chat (None: unlink); a chat linked to another client moves to this one."""
        ...

    async def set_telegram_reachable(self, client_id: int, reachable: bool) -> Client: ...


class Timeline(Protocol):
    """The client's timeline and purchase history. Writes with a ``dedup_key`` are idempotent:
    a key seen before returns the stored event instead of adding one."""

    async def list_orders(self, client_id: int, limit: int = 50) -> Sequence[Order]:
        """Newest order first (placed_at, then id)."""
        ...

    async def timeline(
        self, client_id: int, *, before_id: int | None = None, limit: int = 50
    ) -> Sequence[TimelineEvent]:
        """Newest first; the next page: ``before_id`` = the last id of this one."""
        ...

    async def append_event(self, event: NewEvent) -> TimelineEvent: ...

    async def append_events(self, events: Sequence[NewEvent]) -> Sequence[TimelineEvent]:
        """Many events in one transaction, in input order (each dedup key appended once)."""
        ...


class NpsAnswers(Protocol):
    """NPS answers: recorded once per dedup key (with their timeline event), read by managers."""

    async def record_nps(self, response: NewNpsResponse) -> NpsResponse:
        """The stored answer (the earlier one when its dedup key was seen before)."""
        ...

    async def list_nps_answers(
        self, query: NpsQuery, *, before: NpsCursor | None = None, limit: int = 50
    ) -> Sequence[NpsResponse]:
        """Answers newest first (``answered_at``, then id); next page: ``before`` the last one."""
        ...

    async def list_nps_answers_named(
        self, query: NpsQuery, *, before: NpsCursor | None = None, limit: int = 50
    ) -> tuple[Sequence[NpsResponse], Mapping[int, str]]:
        """``list_nps_answers`` with the names of their clients (``client_names``), in one
        read: the lists a page shows on every request."""
        ...


class TaskBook(Protocol):
    """Managers' follow-up tasks; creating one also writes its timeline event."""

    async def create_task(self, task: NewTask) -> Task:
        """The stored task (the earlier one when its dedup key was seen before)."""
        ...

    async def create_tasks(self, tasks: Sequence[NewTask]) -> Sequence[Task]:
        """Many tasks (with their timeline events) in one transaction, in input order."""
        ...

    async def update_task(
        self,
        task_id: int,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        due_at: datetime | None = None,
        note: str | None = None,
    ) -> Task:
        """Changes the given fields only; raises NotFound for an unknown id."""
        ...

    async def get_task(self, task_id: int) -> Task:
        """Raises NotFound for an unknown id."""
        ...

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        limit: int = 100,
        after: tuple[datetime, int] | None = None,
    ) -> Sequence[Task]:
        """Soonest due first (due_at, then id); the next page: ``after`` the (due_at, id) of
        the last task of this one."""
        ...

    async def list_tasks_named(
        self,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        limit: int = 100,
        after: tuple[datetime, int] | None = None,
    ) -> tuple[Sequence[Task], Mapping[int, str]]:
        """``list_tasks`` with the names of their clients (``client_names``), in one read."""
        ...

    async def list_client_tasks(self, client_id: int, *, limit: int = 50) -> Sequence[Task]:
        """Unfinished first by due date, then finished ones."""
        ...

    async def tasks_of_clients(
        self, client_ids: Sequence[int], *, limit: int = 50
    ) -> Mapping[int, Sequence[Task]]:
        """``list_client_tasks`` of each client, in one read (a client without tasks: none)."""
        ...

    async def count_tasks(self, statuses: Sequence[TaskStatus]) -> int: ...


@dataclass(frozen=True, slots=True)
class ClientCard:
    """What the client card shows, read together: the client, a page of the timeline, the
    newest orders and answers, the tasks."""

    client: Client
    timeline: Sequence[TimelineEvent]
    orders: Sequence[Order]
    tasks: Sequence[Task]
    answers: Sequence[NpsResponse]


class ClientCards(Protocol):
    async def client_card(
        self,
        client_id: int,
        *,
        before_id: int | None = None,
        events: int = 50,
        orders: int = 20,
        answers: int = 10,
        tasks: int = 50,
    ) -> ClientCard:
        """One read (one connection) of what ``list_orders``, ``timeline``,
        ``list_client_tasks`` and ``list_nps_answers`` return for the client, with those
        limits (0: not read); raises NotFound for an unknown id."""
        ...


class HistoryStore(
    ClientDirectory, ClientSettings, Timeline, NpsAnswers, TaskBook, ClientCards, Protocol
):
    """The whole client history store, for the composition root and the few parts that use
    every side of it; a part that needs one side asks for that smaller port instead."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    speaker: str  # "robot", "client" or "mono"
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Transcript:
    file: str
    duration_s: float
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)


class Transcriber(Protocol):
    async def transcribe(self, path: Path) -> Transcript: ...


class SpeechSynth(Protocol):
    """Text to 8 kHz 16-bit mono PCM."""

    async def synth(self, text: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """Events in id order, and (PostgreSQL) ``pg_current_snapshot()`` as text, taken right after
    the read: ids below the newest seen may still appear while a transaction listed in it runs."""

    events: Sequence[TimelineEvent]
    snapshot: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecords:
    """An event and the records its ``ref`` points to (an NPS answer, a task), if any."""

    event: TimelineEvent
    nps: NpsResponse | None = None
    task: Task | None = None


class TimelineFeed(Protocol):
    """The client timeline read in id order by a part that follows it (the CRM push), without
    reaching into the history store's tables. Ids grow with insertion; nothing here writes."""

    async def newest_id(self) -> int:
        """The highest event id visible now; 0 for an empty timeline."""
        ...

    async def page_after(self, after: int, limit: int) -> TimelinePage:
        """Up to ``limit`` events with ids above ``after``, ascending by id."""
        ...

    async def in_ranges(self, ranges: Sequence[tuple[int, int]]) -> Sequence[TimelineEvent]:
        """Events whose ids fall in any of the inclusive ranges, ascending by id."""
        ...

    async def with_records(self, event_ids: Sequence[int]) -> Mapping[int, EventRecords]:
        """The events among ``event_ids`` that exist, by id, each with the records it points
        to (a missing record is None); unknown ids are left out. Raises StoreError."""
        ...


@dataclass(frozen=True, slots=True)
class CrmNote:
    """A timeline entry on a CRM contact. ``key`` is written into the text so the entry can be
    found again (a push that may have landed before a crash is looked up, not repeated)."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class CrmTask:
    """A to-do for a manager on a CRM contact (``key`` as in :class:`CrmNote`)."""

    key: str
    title: str
    text: str
    due_at: datetime


class CrmConnector(Protocol):
    """An external CRM (Bitrix24, amoCRM) as the outcome sync sees it. Remote ids are strings.

    Failures: ``CrmUnavailable`` (retry later; network, 5xx, auth, rate limits) or a refusal of
    this one request (``crm_sync.connectors.errors.CrmRefused``)."""

    name: str

    async def find_contact(self, client: Client) -> str | None:
        """The CRM contact of a client (by phone, or by the id it was created with)."""
        ...

    async def contact_exists(self, contact_id: str) -> bool: ...

    async def create_contact(self, client: Client) -> str: ...

    async def add_note(self, contact_id: str, note: CrmNote) -> str: ...

    async def find_note(self, contact_id: str, key: str) -> str | None: ...

    async def add_task(self, contact_id: str, task: CrmTask) -> str: ...

    async def find_task(self, contact_id: str, key: str) -> str | None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LateOutcome:
    """One late outcome of an attempt (``OutcomeSink.report_many``)."""

    attempt_id: int
    kind: OutcomeKind
    data: Mapping[str, Any] | None = None


class OutcomeSink(Protocol):
    """Where a channel reports a late outcome (a button pressed hours after the message).
    The same report twice is recorded once."""

    async def report(
        self, attempt_id: int, kind: OutcomeKind, data: Mapping[str, Any] | None = None
    ) -> None:
        """Raises ``NotFound`` for an unknown attempt."""
        ...

    async def report_many(self, outcomes: Sequence[LateOutcome]) -> set[int]:
        """Many outcomes in one transaction (a page of button presses); the ids of the
        attempts that were not found (their outcomes are not recorded, the rest are)."""
        ...


class Reports(Protocol):
    """Repeat-sales figures for the bot's /nps and the dashboard."""

    async def nps(self, start: datetime, end: datetime) -> NpsSummary: ...


@dataclass(frozen=True, slots=True)
class PlanningRules:
    """The planner's business rules, as numbers the planning SQL can use."""

    reorder_lead_days: int = 3
    reorder_fallback_cycle_days: int = 30
    reorder_min_cycle_days: int = 7
    reorder_grace_days: int = 14  # a reminder is still useful this long after the expected date
    nps_after_delivery_days: int = 3
    nps_grace_days: int = 14  # ask about a delivery at most this long after it became due
    nps_window_days: int = 90
    winback_after_days: tuple[int, ...] = (30, 90, 180)
    winback_overdue_factor: float = 1.5  # silence must also exceed this many own cycles
    winback_max_silence_days: int = 730  # longer silence: the client is not contacted at all
    # Advertising purposes (reorder, win-back) only for clients with an advertising grant on a
    # channel the planner uses (call, Telegram): the others could not be contacted anyway. The
    # planner sets it from its contact rules (``ContactRules.require_ad_consent``).
    require_ad_consent: bool = False


@dataclass(frozen=True, slots=True)
class DuePage:
    """One keyset page of clients: for each purpose asked, who is due, in client id order (a
    client at most once per purpose); ``next_after`` is None when no clients are left."""

    candidates: Mapping[Purpose, Sequence[Candidate]]
    next_after: int | None


class PlanningSource(Protocol):
    """Set-based reads for the planner: who is due, computed over a batch of clients.

    Pages are keyset ranges of client ids: clients with ``id > after_client_id``, at most
    ``limit`` of them per page (whether or not they yield a candidate). Opted-out clients are
    never returned.
    """

    async def due(
        self,
        as_of: datetime,
        rules: PlanningRules,
        purposes: Collection[Purpose],
        *,
        after_client_id: int,
        limit: int,
        upto: int | None = None,
    ) -> DuePage:
        """The candidates of one page for each of ``purposes`` (reorder: the one category due
        soonest per client; NPS: the last delivery; win-back: the silence since the last order),
        each purpose's list ordered by client id; every asked purpose has a list, possibly
        empty. ``upto``: the page's last client id, when ``page_end`` gave it already. Raises
        ``StoreError`` when the store cannot be read."""
        ...

    async def page_end(self, *, after_client_id: int, limit: int) -> int | None:
        """The last client id of the page after ``after_client_id`` (at most ``limit``
        clients), None when no clients are left: the caller can start reading the pages
        after it before this one is read. Raises ``StoreError`` as ``due``."""
        ...


@dataclass(frozen=True, slots=True)
class DialogueLine:
    """One utterance of a call, seconds from the start of the recording."""

    speaker: str  # "robot", "client" or "mono"
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class CallView:
    """A call as managers see it: outcome, talk time and the transcript as a dialogue."""

    id: int
    client_id: int | None
    started_at: datetime
    direction: str  # "out" or "in"
    outcome: OutcomeKind | None = None
    talk_s: float | None = None
    has_recording: bool = False
    transcript_state: str | None = None  # "pending", "done", "failed" or None (no recording)
    dialogue: tuple[DialogueLine, ...] = ()


class CallHistory(Protocol):
    """Calls with their transcripts and recordings (implemented by the voice subsystem)."""

    async def calls_for_client(self, client_id: int, limit: int = 20) -> Sequence[CallView]: ...

    async def get_call(self, call_id: int) -> CallView | None: ...

    async def recording_path(self, call_id: int) -> Path | None:
        """A local WAV file of the call (fetched from remote storage if need be), or None."""
        ...


@dataclass(frozen=True, slots=True)
class CrmSyncSummary:
    """The CRM sync at a glance. ``connector`` is None when no CRM is configured."""

    connector: str | None
    counts: Mapping[str, int]  # pushes per state: pending, sending, done, failed
    oldest_pending_at: datetime | None = None  # queued the longest and not yet pushed
    last_pushed_at: datetime | None = None
    retrying: int = 0  # pending again after an error (the CRM was down, refusing or limiting)
    next_try_at: datetime | None = None  # the earliest of those retries
    worker: str | None = None  # who holds the sync now (lease), if anyone
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CrmFailure:
    """A push that gave up; ``error`` as stored (no tokens, phones masked)."""

    id: int  # keyset position: the next page is ``before_id`` the last one shown
    event_id: int
    client_id: int
    kind: str
    attempts: int
    error: str
    at: datetime


class CrmSyncView(Protocol):
    """The CRM sync as managers see it on the dashboard (implemented by crm_sync)."""

    async def summary(self) -> CrmSyncSummary: ...

    async def failures(
        self, *, limit: int = 50, before_id: int | None = None
    ) -> Sequence[CrmFailure]:
        """Failed pushes, newest queued first."""
        ...

    async def retry(self, event_ids: Sequence[int] | None = None) -> int:
        """Failed pushes (these events, or all with None) back to pending; how many."""
        ...


@dataclass(frozen=True, slots=True)
class AbcCell:
    """One cell of the period's ABC/XYZ matrix (``xyz`` None: fewer than three months)."""

    start: datetime
    end: datetime
    abc: str  # "A", "B" or "C"
    xyz: str | None = None  # "X", "Y", "Z"


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """Filters of the dashboard's client list; ``None`` means any."""

    text: str = ""  # name (substring), exact client code, or phone digits
    phone_suffix_only: bool = False  # phone digits match only the last 4 or the whole number
    segment: str | None = None  # "none", "new", "repeat" or "lost" (see ClientSummary)
    nps_group: NpsGroup | None = None  # of the client's last scored answer
    last_order_min_days: int | None = None  # last order at least this many days ago
    last_order_max_days: int | None = None  # ... and at most this many
    channel: ChannelKind | None = None  # telegram: linked and reachable; call: has a phone
    consent: ConsentChannel | None = None  # consent granted for this channel
    opted_out: bool | None = None
    cell: AbcCell | None = None  # buyers of the period in this ABC/XYZ cell
    as_of: datetime | None = None  # "days ago" and segments count from here (default now)


@dataclass(frozen=True, slots=True)
class ClientSummary:
    """A row of the client list: the client's columns it shows and its figures (not a whole
    ``Client``: a list page needs neither consents nor the rest of the record).

    ``segment``: "none" (never ordered), "new" (one order, active), "repeat" (two or more orders,
    active), "lost" (no order within the activity window of 365 days)."""

    id: int
    external_id: str
    name: str
    segment: str
    phones: tuple[str, ...] = ()  # E.164, first is primary
    telegram_linked: bool = False
    telegram_reachable: bool = True
    opted_out: bool = False
    orders: int = 0
    revenue: Decimal = Decimal(0)
    last_order_at: datetime | None = None
    last_score: int | None = None
    last_answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    group: NpsGroup
    category: ReasonCategory | None  # None: no reason given or not yet classified
    answers: int


@dataclass(frozen=True, slots=True)
class TaskCounts:
    open: int
    in_progress: int
    overdue: int  # open or in progress, due before now


# The periods the repeat-sales page offers, precomputed in the background: days up to today
# (the business's time zone), or None for all time (from the first order).
REPORT_PERIODS: Mapping[str, int | None] = {"month": 30, "quarter": 90, "year": 365, "all": None}


@dataclass(frozen=True, slots=True)
class ReportSnapshot:
    """The repeat-sales report of one of ``REPORT_PERIODS`` as stored by the last refresh."""

    period: str
    first: date
    last: date  # inclusive
    computed_at: datetime
    report: Mapping[str, Any]  # the shape of ``povtor report --json``


class RetentionView(Protocol):
    """Retention figures and client lists as the dashboard shows them (implemented by
    crm_sync over the same SQL as ``povtor report``)."""

    async def repeat_sales(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        """The figures of ``povtor report --json`` for [start, end), in that JSON shape."""
        ...

    async def report_snapshot(self, period: str) -> ReportSnapshot | None:
        """The stored report of ``period`` (a key of ``REPORT_PERIODS``); None before the
        first refresh."""
        ...

    async def client_count(self) -> int:
        """Clients in the store (whether a report may be computed on request)."""
        ...

    async def list_clients(
        self, where: ClientFilter, *, after_id: int | None = None, limit: int = 50
    ) -> Sequence[ClientSummary]:
        """Keyset pages by ascending client id."""
        ...

    async def nps_counts(self, bounds: Sequence[datetime]) -> Sequence[Mapping[NpsGroup, int]]:
        """Scored answers per group in each [bounds[i], bounds[i + 1]), in one read."""
        ...

    async def reasons(self, start: datetime, end: datetime) -> Sequence[ReasonCount]:
        """Scored answers of the period by NPS group and reason category."""
        ...

    async def figures_through(self) -> datetime | None:
        """Up to when the answers per day stored after the last planning pass were counted
        (``nps_counts`` and ``reasons`` count the later ones on request); None: nothing
        stored, every answer counted on request."""
        ...

    async def outreach(self, start: datetime, end: datetime) -> Mapping[str, int]:
        """Contacts of the period from the timeline: ``messages`` sent, ``calls`` made, calls
        per outcome as ``call_<outcome>``, ``answers`` (NPS answers received)."""
        ...

    async def task_counts(self, now: datetime) -> TaskCounts: ...

    async def nps_answer(self, answer_id: int) -> NpsResponse | None: ...


# -- outreach as the dashboard sees it (implemented by outreach) -----------------------------


@dataclass(frozen=True, slots=True)
class PlannedContact:
    """One contact planned for today: who, why, which channel, from when (UTC)."""

    attempt_id: int
    client_id: int
    purpose: Purpose
    channel: ChannelKind
    not_before: datetime
    reason: str
    state: AttemptState


@dataclass(frozen=True, slots=True)
class CampaignView:
    """Attempts of one purpose from a large planning pass; ``state``: pending, auto,
    approved or rejected."""

    id: int
    purpose: Purpose
    state: str
    attempts: int
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None


@dataclass(frozen=True, slots=True)
class OutreachResults:
    """What came of contacts since a moment: executions started per channel, outcomes per
    kind, and the commonest reasons of failures and skips."""

    since: datetime
    started: Mapping[str, int]  # channel -> contacts started
    outcomes: Mapping[str, int]  # outcome kind -> count
    failures: Sequence[tuple[str, int]]  # (detail, count), commonest first
    skipped: Sequence[tuple[str, int]]  # attempts given up without a contact: (why, count)


@dataclass(frozen=True, slots=True)
class CapInForce:
    """A pacing cap over all clients and how much of it is used now."""

    label: str  # "call/*", "telegram/nps"
    per_hour: int | None
    per_day: int | None
    used_hour: int
    used_day: int


@dataclass(frozen=True, slots=True)
class OutreachAction:
    """An entry of the outreach audit log."""

    at: datetime
    actor: str
    action: str  # approve, reject, pause, resume
    target: str
    detail: str = ""


class OutreachControl(Protocol):
    """The outreach engine as managers see and steer it on the dashboard."""

    async def plan(self, until: datetime, *, limit: int = 200) -> Sequence[PlannedContact]:
        """Attempts due before ``until`` (or waiting for approval), earliest first."""
        ...

    async def campaigns(self, *, limit: int = 20) -> Sequence[CampaignView]:
        """Pending campaigns first, then the latest decided ones."""
        ...

    async def decide_campaign(self, campaign_id: int, *, approve: bool, by: str) -> int:
        """Approve or reject a pending campaign (``LookupError`` if it is not pending); the
        number of clients concerned. Written to the audit log and their timelines."""
        ...

    async def paused(self) -> Mapping[Purpose, tuple[datetime, str]]: ...

    async def set_paused(self, purpose: Purpose, paused: bool, *, by: str) -> bool:
        """Pause (or resume) new contacts for a purpose; False if nothing changed."""
        ...

    async def results(self, since: datetime) -> OutreachResults: ...

    async def caps(self) -> Sequence[CapInForce]: ...

    async def actions(self, *, limit: int = 20) -> Sequence[OutreachAction]: ...


class DeadLetters(Protocol):
    """Work one durable queue gave up on (its dead letters, :mod:`povtor.work`), as managers
    see it on the dashboard; implemented by the adapter that owns the queue."""

    name: str  # which queue: "crm", "telegram", "transcripts"
    retryable: bool  # whether a manager may put its dead letters back in the queue

    async def dead_letters(self, limit: int = 50) -> Sequence[DeadLetter]:
        """The newest ``limit`` dead letters, newest first."""
        ...

    async def revive(self, ids: Sequence[int]) -> int:
        """These dead letters (all when empty) back in the queue, due now, with fresh attempts;
        how many. Raises ``NotImplementedError`` unless ``retryable``."""
        ...


# -- the worker's health where other processes read it (implemented by the dashboard) ------


class HealthFeed(Protocol):
    """The worker's components' health (:mod:`povtor.health`) for readers in other processes:
    the worker publishes every change, a dashboard served by several processes reads it."""

    async def publish(self, components: Sequence[ComponentHealth]) -> None:
        """Replaces what this worker published before with ``components``."""
        ...

    async def problems(self) -> Sequence[ComponentHealth]:
        """The published components not OK, by name."""
        ...
