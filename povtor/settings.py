"""Settings from the environment (``POVTOR_*``) or a ``.env`` file.

Each subsystem has its own section with its own prefix (``POVTOR_SIP_*``,
``POVTOR_TELEGRAM_*``...), gathered under :class:`Settings`.
Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


class TelegramSettings(BaseSettings):
    model_config = _config("POVTOR_TELEGRAM_")

    bot_token: SecretStr | None = None
    bot_username: str | None = None  # used in deep links; asked from getMe when not set
    api_base: str | None = None  # another Bot API server (local server, test fake)
    mode: str = "polling"  # "polling" or "webhook"
    webhook_url: str | None = None  # Telegram posts here; its path is the path served
    webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 8443
    global_rate: float = 30.0  # messages per second, whole bot
    per_chat_rate: float = 1.0  # messages per second, one chat
    answer_timeout_s: float = 6 * 3600  # unanswered message -> fall back to a call
    # added by the bot
    texts_path: Path | None = None  # a business's copy of bot/texts/ru.yaml
    company_name: str = "нашей компании"  # as it appears in texts ("бот {{ company }}")
    polling_timeout_s: int = 25  # long-poll wait of getUpdates
    # polled updates handled at once: a few getUpdates pages (100 each), so that a page is not
    # cut into several sets of writes while the one before it finishes
    max_concurrent_updates: int = 256
    rate_margin_s: float = 0.0  # widens the rate windows (they already run to each answer)
    send_retries: int = 5  # 5xx / network errors, with exponential backoff
    retry_backoff_s: float = 0.5
    link_ttl_days: int = 60  # deep-link tokens expire after this
    invite_ttl_hours: int = 72  # manager invites expire after this
    nps_reason_wait_s: float = 24 * 3600  # score kept alone if the follow-up is never answered
    outage_backoff_s: float = 1.0  # Telegram unreachable: first retry after this, doubling
    outage_backoff_max_s: float = 60.0  # ... up to this
    poll_lease_s: float = 30.0  # one worker polls; another takes over this long after it died
    # a voice answer being transcribed holds the next polled page this long at most
    page_wait_s: float = 5.0

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None


class SipTrunk(BaseModel):
    """One SIP trunk or PBX account: the default one is read from ``POVTOR_SIP_*``, each entry of
    the trunks file (``POVTOR_SIP_TRUNKS_FILE``) has the same keys in lower case."""

    name: str = "default"
    proxy: str | None = None  # host[:port] of the trunk / PBX
    registrar: str | None = None
    register_enabled: bool = False
    register_expires: int = 600
    register_hold_calls: bool = True  # no calls through the trunk while it is not registered
    register_retry_min_s: float = 2.0  # a failed REGISTER is retried after this, doubling...
    register_retry_max_s: float = 60.0  # ...up to this
    user: str | None = None
    auth_user: str | None = None
    password: SecretStr | None = None
    caller_id: str | None = None
    domain: str | None = None
    transport: str = "udp"
    local_host: str = "0.0.0.0"
    local_port: int = 5060  # 0 = any free port (trunks in the trunks file default to 0)
    public_host: str | None = None  # address to put in SDP/Contact behind NAT
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    max_concurrent_calls: int = 30
    calls_per_second: float = 5.0
    ring_timeout_s: float = 30.0
    codecs: tuple[str, ...] = ("PCMU", "PCMA")  # preference order
    dtmf_payload_type: int = 101  # telephone-event type we offer
    t1_s: float = 0.5  # RFC 3261 T1; INVITE gives up after 64*T1
    symmetric_rtp: bool = True  # send RTP back to where the client's RTP comes from
    rtp_timeout_s: float = 20.0  # hang up when the client's RTP stops this long (0 = never)
    early_hangup_s: float = 3.0  # client hang-up this soon after answer = hung up early
    # how a client is handed to a manager: "refer" (SIP REFER; where the trunk refuses it, a
    # second call joined through Povtor) or "bridge" (always that second call: trunks known to
    # refuse or mishandle REFER)
    transfer_by: Literal["refer", "bridge"] = "refer"


class SipSettings(SipTrunk, BaseSettings):
    """The default trunk (:class:`SipTrunk` from ``POVTOR_SIP_*``) and where the others are."""

    model_config = _config("POVTOR_SIP_")

    enabled: bool = False
    trunks_file: Path | None = None

    def default_trunk(self) -> SipTrunk:
        """The trunk fields alone, without the settings that are not a trunk's."""
        return SipTrunk.model_validate(self.model_dump(include=set(SipTrunk.model_fields)))


class AsrSettings(BaseSettings):
    model_config = _config("POVTOR_ASR_")

    model: str = "ru-small"  # a name from `povtor model list` or a folder path
    workers: int = 0  # 0 = number of cores
    background: bool = True  # transcribe new recordings in the worker
    model_base_url: str = "https://alphacephei.com/vosk/models"
    skip_robot: bool = False  # background: leave the robot's (left) channel undecoded
    scan_interval_s: float = 30.0  # background: how often the recordings folder is scanned
    max_audio_s: float = Field(default=4 * 3600.0, gt=0)  # longer files are refused
    # which voice activity detector picks the speech to decode: "silero" (the Silero model) or
    # "energy" (levels against each recording's noise floor); figures in docs/voice.md
    vad: Literal["energy", "silero"] = "silero"
    vad_threshold: float = Field(default=0.5, gt=0, lt=1)  # silero: speech score
    # the decoding processes' allocator: "jemalloc" where the system has libjemalloc (about a
    # fifth less decoding CPU than glibc's malloc, figures in docs/voice.md), or "system"
    allocator: Literal["jemalloc", "system"] = "jemalloc"


class RecordingSettings(BaseSettings):
    model_config = _config("POVTOR_RECORDINGS_")

    folder: Path | None = None  # defaults to DATA_DIR/recordings
    retention_days: int = 365
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    flush_interval_s: float = 1.0  # how often a live recording is written out (kept on a kill)
    writer_threads: int = 2  # threads doing the file I/O of all live recordings
    sweep_interval_s: float = 3600.0  # retention sweep period in the worker


class OutreachSettings(BaseSettings):
    model_config = _config("POVTOR_OUTREACH_")

    enabled: bool = True
    plan_interval_s: float = 600.0
    reorder_lead_days: int = 3
    reorder_fallback_cycle_days: int = 30
    nps_after_delivery_days: int = 3
    nps_window_days: int = 90
    winback_after_days: list[int] = Field(default_factory=lambda: [30, 90, 180])
    call_weekday_start: time = time(9, 0)
    call_weekday_end: time = time(20, 0)
    call_weekend_start: time = time(10, 0)
    call_weekend_end: time = time(18, 0)
    message_start: time = time(9, 0)
    message_end: time = time(21, 0)
    holidays_country: str | None = "RU"
    calls_per_day: int = 1
    calls_per_week: int = 2
    calls_per_month: int = 3
    messages_per_day: int = 1
    messages_per_week: int = 3
    messages_per_month: int = 6
    lease_s: float = 120.0
    batch_size: int = 1000
    concurrency: int = 10
    drain_timeout_s: float = 30.0
    # added by the outreach engine
    reorder_min_cycle_days: int = 7
    reorder_grace_days: int = 14
    nps_grace_days: int = 14
    winback_overdue_factor: float = 1.5
    holiday_calls: bool = False  # calls on public holidays (else none that day)
    holiday_messages: bool = True
    require_consent: bool = False  # True: contact only through explicitly granted channels
    # added for safe outreach: consent, ceilings, pacing, approval
    require_ad_consent: bool = True  # reorder offers and win-back only with recorded consent
    winback_max_silence_days: int = 730  # no win-back after this long without an order
    # caps on all clients together, per channel/purpose: "call/*=60/h,400/d; telegram/nps=..."
    pacing: str = "call/*=60/h,400/d; telegram/*=600/h,3000/d"
    approval_threshold: int = 200  # a planning pass creating more waits for approval (0 = off)
    # retries by outcome: "delay_minutes:max_attempts"
    retry_busy: str = "30:3"
    retry_no_answer: str = "120:3"
    retry_voicemail: str = "1440:2"
    retry_failed: str = "15:3"
    retry_interrupted: str = "5:3"
    retry_hung_up_early: str = "1440:2"
    plan_batch_size: int = 10000
    poll_interval_s: float = 1.0  # idle dispatcher polls this often for due attempts
    max_takeovers: int = 3  # in-progress attempts taken over from dead workers, then given up
    heartbeat_s: float = 10.0
    channel_down_retry_s: float = 30.0  # attempts of a channel that is away (Telegram) wait
    worker_id: str | None = None  # defaults to host:pid


class CallSettings(BaseSettings):
    """The voice robot's conversation: scenarios, synthesised voice, live recognition."""

    model_config = _config("POVTOR_CALL_")

    scenarios_dir: Path | None = None  # a business's own <purpose>.yaml files (else shipped)
    company_name: str | None = None  # as spoken in scenarios; defaults to the Telegram one
    # the opening words of every call (who calls, a robot, recorded) for scenarios without one
    disclosure: str | None = None
    tts_engine: Literal["piper", "espeak"] = "piper"  # piper falls back to espeak if no voice
    tts_voice: str = "ru"  # espeak-ng voice
    tts_speed: int = 150  # espeak-ng words per minute
    piper_voice: str = "ru_RU-irina-medium"  # a voice name (povtor model fetch) or a .onnx path
    piper_speed: float = Field(default=1.0, gt=0)  # 1.0 = the voice's own pace
    piper_base_url: str = "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0"
    detect_machines: bool = True  # answering machines: hang up (or leave voicemail_say)
    live_asr: bool = True  # recognise answers live (needs a Vosk model; else keypad only)
    live_model: str | None = None  # Vosk model for live answers; defaults to POVTOR_ASR_MODEL
    listen_threads: int = 0  # live recognition threads; 0 = POVTOR_SIP_MAX_CONCURRENT_CALLS
    # who is talking, frame by frame: "energy" (a level threshold) or "silero" (Silero VAD:
    # finds answers in line noise the threshold cannot; ~5 ms of CPU per second of audio)
    vad: Literal["energy", "silero"] = "energy"
    vad_threshold: float = Field(default=0.5, gt=0, lt=1)  # Silero's speech score
    max_call_s: float = 300.0  # the robot hangs up a conversation longer than this
    # a manager's number (on the trunk) or SIP URI that `transfer` steps hand the client to
    transfer_to: str | None = None
    transfer_wait_s: float = Field(default=30.0, gt=0)  # for REFER's answer, then the pickup


class DashboardSettings(BaseSettings):
    model_config = _config("POVTOR_DASHBOARD_")

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    # added by the dashboard
    secure_cookies: bool = False  # mark cookies Secure always (served through an https proxy)
    session_ttl_hours: float = 12.0
    login_max_failures: int = 5  # failures per login or per address before a lockout
    login_lockout_s: float = 300.0  # doubles with each further failure, at most an hour
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 2
    page_size: int = 50
    report_cache_s: float = 60.0  # repeat-sales and reasons figures are reused this long
    # the worker stores the repeat-sales report of each offered period after every planning
    # pass, and when the stored one is older than this
    report_refresh_s: float = Field(default=600.0, gt=0)
    # up to this many clients a report not stored yet (or of any dates) is computed on request
    report_live_max_clients: int = 50_000
    live_refresh_s: float = Field(default=20.0, gt=0)  # the outreach page refreshes itself
    # processes serving the dashboard on its one port (the worker's own and N-1 more); with
    # more than one, sessions, failed sign-ins and the worker's health are read from the database
    processes: int = Field(default=1, ge=1, le=64)


class CrmSettings(BaseSettings):
    """Outcome sync to an external CRM (Bitrix24 or amoCRM); off when ``kind`` is "none"."""

    model_config = _config("POVTOR_CRM_")

    kind: str = "none"  # "none", "bitrix24" or "amocrm"
    # Bitrix24: the inbound webhook, https://<portal>/rest/<user_id>/<token>/ (holds the token)
    bitrix24_webhook_url: SecretStr | None = None
    bitrix24_responsible_id: int | None = None  # user of created to-dos (else the webhook's)
    # amoCRM: https://<subdomain>.amocrm.ru, or base_url for another host (amocrm.com, a proxy)
    amocrm_subdomain: str | None = None
    amocrm_base_url: str | None = None
    amocrm_access_token: SecretStr | None = None  # long-lived token, or the first access token
    amocrm_refresh_token: SecretStr | None = None  # with client id/secret: refreshed, rotated
    amocrm_client_id: str | None = None
    amocrm_client_secret: SecretStr | None = None
    amocrm_redirect_uri: str | None = None
    amocrm_responsible_user_id: int | None = None  # user of created tasks (else the token's)
    rate_per_s: float | None = None  # requests per second; None: the CRM's own limit (2 / 7)
    burst: int | None = None  # requests allowed at once; None: 10 for Bitrix24, 1 for amoCRM
    batch_size: int = 100  # pushes claimed per round (events are read 1000 at a time)
    poll_interval_s: float = 5.0  # idle wait between rounds
    events: list[str] = Field(
        default_factory=lambda: ["outcome", "nps", "complaint", "task", "opt_out"]
    )  # also: "task_update", "call", "message_in", "note"
    backfill: bool = False  # first start: push the whole timeline (else only what comes next)
    external_id_is_crm_id: bool = False  # clients were imported from this CRM (ids are its ids)
    max_attempts: int = 10  # failures before an event is marked failed (rate limits not counted)
    retry_backoff_s: float = 10.0  # first retry delay; doubles up to retry_max_s
    retry_max_s: float = 3600.0
    timeout_s: float = 30.0  # one HTTP request
    lease_s: float = 120.0  # one worker syncs at a time; a dead one's turn passes after this
    gap_wait_s: float = 600.0  # PostgreSQL: at most this long for an open transaction's id


class Settings(BaseSettings):
    model_config = _config("POVTOR_")

    data_dir: Path = Path("data")
    database_url: str | None = None
    default_region: str = "RU"
    default_timezone: str = "Europe/Moscow"
    currency: str = "RUB"
    secret_key: SecretStr | None = None  # signs deep links and sessions; kept in DATA_DIR if unset
    # the key of the erased clients' suppression digests (docs/legal.md); unset: generated once
    # and kept in the database, so every worker and command shares it
    erasure_key: SecretStr | None = None
    log_level: str = "INFO"
    log_format: str = "text"  # "text" or "json"
    log_library_level: str = "INFO"  # third-party loggers (botocore, urllib3...) never below
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    demo_mode: bool = False  # set by `povtor demo` only: loopback stand-ins, demo clients allowed
    # the demo's fast clock (demo mode only): contact hours follow a clock that shows
    # DEMO_CLOCK_START at the real moment DEMO_CLOCK_ORIGIN and runs DEMO_CLOCK_SPEED times faster
    demo_clock_start: datetime | None = None
    demo_clock_origin: datetime | None = None
    demo_clock_speed: int = 1

    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)
    outreach: OutreachSettings = Field(default_factory=OutreachSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    call: CallSettings = Field(default_factory=CallSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @property
    def db_url(self) -> str:
        """``POVTOR_DATABASE_URL``, or an embedded SQLite file in the data folder."""
        if self.database_url:
            from povtor.db import async_url

            return async_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'povtor.db').resolve()}"

    @property
    def recordings_dir(self) -> Path:
        return self.recordings.folder or self.data_dir / "recordings"

    @property
    def recording_cache_dir(self) -> Path:
        """Where the dashboard keeps recordings fetched from remote storage to play them."""
        return self.data_dir / "cache" / "recordings"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    def resolved_secret_key(self) -> str:
        """The signing key; when unset, one is generated once and kept in the data folder."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
        return key
