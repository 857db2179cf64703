"""Domain types shared by every subsystem: plain frozen dataclasses, no ORM, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class ChannelKind(StrEnum):
    TELEGRAM = "telegram"
    CALL = "call"


class ConsentChannel(StrEnum):
    TELEGRAM = "telegram"
    CALL = "call"
    SMS = "sms"
    EMAIL = "email"


class Purpose(StrEnum):
    REORDER = "reorder"
    NPS = "nps"
    WINBACK = "winback"


class ContactKind(StrEnum):
    """What the law sees in a contact: a service one (a survey about a delivered order) or
    advertising (an offer to buy again, a win-back call), which needs the client's consent."""

    SERVICE = "service"
    ADVERTISING = "advertising"


def contact_kind(purpose: Purpose) -> ContactKind:
    """NPS after a delivery is service; reorder offers and win-back calls advertise."""
    return ContactKind.SERVICE if purpose is Purpose.NPS else ContactKind.ADVERTISING


class AttemptState(StrEnum):
    PLANNED = "planned"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    RETRY_SCHEDULED = "retry_scheduled"
    GIVEN_UP = "given_up"
    PENDING_APPROVAL = "pending_approval"  # planned in a large pass: waits for a manager


class OutcomeKind(StrEnum):
    """What came of one contact attempt, whatever the channel."""

    ANSWERED = "answered"  # a call was answered / a message was answered by the client
    DELIVERED = "delivered"  # a message reached the chat, no answer yet
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    REJECTED = "rejected"
    HUNG_UP_EARLY = "hung_up_early"
    UNREACHABLE = "unreachable"  # bot blocked, chat not found, number does not exist
    FAILED = "failed"  # anything else that went wrong; detail says what
    INTERRUPTED = "interrupted"  # the worker died during the attempt


class EventKind(StrEnum):
    """Kinds of entries in a client's timeline."""

    ORDER = "order"
    MESSAGE_IN = "message_in"
    MESSAGE_OUT = "message_out"
    CALL = "call"
    NPS_ANSWER = "nps_answer"
    COMPLAINT = "complaint"
    TASK = "task"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    CONSENT = "consent"
    NOTE = "note"


class TaskStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class ReasonCategory(StrEnum):
    """Why a client is unhappy or left: the reasons a repeat-sales team tracks."""

    SERVICE_QUALITY = "service_quality"
    NO_PERSONAL_APPROACH = "no_personal_approach"
    MANAGER_COMPETENCE = "manager_competence"
    NO_CONVENIENT_CHANNEL = "no_convenient_channel"
    SLOW_PROCESSING = "slow_processing"
    PRODUCT_QUALITY = "product_quality"
    PRICE = "price"
    DELIVERY = "delivery"
    OTHER = "other"


class NpsGroup(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


# The one place the NPS groups are defined; SQL filters and texts read these bounds.
NPS_SCORES: dict[NpsGroup, tuple[int, int]] = {
    NpsGroup.DETRACTOR: (0, 6),
    NpsGroup.PASSIVE: (7, 8),
    NpsGroup.PROMOTER: (9, 10),
}


def nps_group(score: int) -> NpsGroup:
    """Promoters 9-10, passives 7-8, detractors 0-6 (:data:`NPS_SCORES`)."""
    for group, (low, high) in NPS_SCORES.items():
        if low <= score <= high:
            return group
    raise ValueError(f"NPS score must be 0..10, got {score}")


@dataclass(frozen=True, slots=True)
class Consent:
    channel: ConsentChannel
    granted: bool
    source: str
    at: datetime
    kind: ContactKind = ContactKind.SERVICE  # advertising consent is recorded on its own


@dataclass(frozen=True, slots=True)
class Client:
    id: int
    external_id: str
    name: str
    phones: tuple[str, ...] = ()  # E.164, first is primary
    email: str | None = None
    timezone: str = "Europe/Moscow"
    preferred_channel: ChannelKind | None = None
    telegram_chat_id: int | None = None
    telegram_reachable: bool = True
    consents: tuple[Consent, ...] = ()
    opted_out_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None

    def consent_for(
        self, channel: ConsentChannel, kind: ContactKind = ContactKind.SERVICE
    ) -> Consent | None:
        for consent in self.consents:
            if consent.channel == channel and consent.kind == kind:
                return consent
        return None


@dataclass(frozen=True, slots=True)
class OrderItem:
    name: str
    quantity: Decimal = Decimal(1)
    price: Decimal | None = None
    sku: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    external_id: str
    client_id: int
    placed_at: datetime
    amount: Decimal
    currency: str = "RUB"
    delivered_at: datetime | None = None
    items: tuple[OrderItem, ...] = ()


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    id: int
    client_id: int
    kind: EventKind
    at: datetime
    summary: str
    ref: str | None = None  # "order:42", "call:7", "attempt:9"...
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NpsResponse:
    id: int
    client_id: int
    score: int | None
    channel: ChannelKind
    answered_at: datetime
    reason_text: str | None = None
    reason_category: ReasonCategory | None = None
    source_kind: str | None = None  # "message" or "call"
    source_id: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    client_id: int | None
    kind: str  # "detractor", "complaint", "callback", "unknown_contact", ...
    title: str
    due_at: datetime
    status: TaskStatus = TaskStatus.OPEN
    assignee: str | None = None
    created_at: datetime | None = None
    source_ref: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One planned contact with one client for one purpose through one channel."""

    id: int
    client_id: int
    purpose: Purpose
    channel: ChannelKind
    state: AttemptState
    not_before: datetime
    idempotency_key: str
    attempt_no: int = 1  # the execution (dial) number: the call's and the message's keys
    reason: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    our_failures: int = 0  # executions that failed on our side (trunk down): not the client's

    @property
    def client_try(self) -> int:
        """Which of the client's tries this execution is: our own failures use up none."""
        return self.attempt_no - self.our_failures


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a channel reports after executing an attempt."""

    kind: OutcomeKind
    detail: str = ""
    sip_code: int | None = None
    finished_at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # score, intent, button pressed...
    ref: str | None = None  # "call:12", "message:34"
    # our failure (trunk down, not registered), not the client's: retried without using up the
    # client's tries, and not counted as a contact
    ours: bool = False


@dataclass(frozen=True, slots=True)
class NpsSummary:
    """NPS over a period: % promoters - % detractors among scored answers."""

    start: datetime
    end: datetime
    promoters: int
    passives: int
    detractors: int
    responses: int  # scored answers
    asked: int  # surveys sent in the period (for the response rate)

    @property
    def nps(self) -> float | None:
        if self.responses == 0:
            return None
        return round(100.0 * (self.promoters - self.detractors) / self.responses, 1)

    @property
    def response_rate(self) -> float | None:
        return None if self.asked == 0 else round(self.responses / self.asked, 4)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A client the planner may contact for one purpose, with what the contact policies need."""

    client_id: int
    external_id: str
    purpose: Purpose
    due_at: datetime  # when the contact becomes due (UTC)
    reason: str  # why, for people: "reorder expected 2026-05-01 (cycle 30 d, category coffee)"
    key: str  # stable identity of this occasion: the same occasion yields the same key
    timezone: str = "Europe/Moscow"
    preferred_channel: ChannelKind | None = None
    telegram_linked: bool = False
    telegram_reachable: bool = True
    consents: tuple[tuple[ConsentChannel, bool], ...] = ()  # explicit grants / refusals
    opted_out: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)  # category, cycle_days, silence_days
    ad_consents: tuple[tuple[ConsentChannel, bool], ...] = ()  # consent to advertising
