"""The manager dashboard as an aiohttp application: ``build_app`` for the composition root."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from dashboard import (
    answer_views,
    auth_views,
    call_views,
    client_views,
    consent_views,
    crm_views,
    erasure_views,
    failures_views,
    nps_views,
    outreach_views,
    overview,
    reason_views,
    repeat_views,
    task_views,
    user_views,
)
from dashboard.context import DEPS, PAGES_IN_FLIGHT, Deps
from dashboard.formatting import Formatter
from dashboard.passwords import Passwords
from dashboard.recent import Recent
from dashboard.rendering import PageEnvironment
from dashboard.security import check_csrf, error_pages, require_login, security_headers
from dashboard.shared_pages import PagesInFlight, writes_end_sharing
from dashboard.throttle import LoginThrottle
from dashboard.users import UserStore
from povtor.health import HealthBoard
from povtor.ports import (
    CallHistory,
    ClientEraser,
    CrmSyncView,
    DeadLetters,
    HealthFeed,
    HistoryStore,
    OutreachControl,
    Reports,
    RetentionView,
)
from povtor.settings import Settings

HERE = Path(__file__).parent
ADDRESS_FAILURE_FACTOR = 4  # an office behind one address gets more tries than one login


def build_app(
    settings: Settings,
    store: HistoryStore,
    reports: Reports,
    calls: CallHistory | None = None,
    *,
    users: UserStore,
    crm: CrmSyncView | None = None,
    retention: RetentionView | None = None,
    transcription_off: str | None = None,
    health: HealthBoard | None = None,
    outreach: OutreachControl | None = None,
    dead_letters: Sequence[DeadLetters] = (),
    shared_health: HealthFeed | None = None,
    erasure: ClientEraser | None = None,
) -> web.Application:
    """The dashboard over the ports and the user store the composition root opened."""
    ds = settings.dashboard
    deps = Deps(
        settings=settings,
        store=store,
        reports=reports,
        calls=calls,
        passwords=Passwords(ds),
        login_throttle=LoginThrottle(users.sessions, ds.login_max_failures, ds.login_lockout_s),
        address_throttle=LoginThrottle(
            users.sessions, ds.login_max_failures * ADDRESS_FAILURE_FACTOR, ds.login_lockout_s
        ),
        secret_key=settings.resolved_secret_key().encode(),
        users=users,
        crm=crm,
        retention=retention,
        transcription_off=transcription_off,
        recent=Recent(ds.report_cache_s),
        health=health,
        outreach=outreach,
        dead_letters=dead_letters,
        shared_health=shared_health,
        erasure=erasure,
    )
    app = web.Application(
        middlewares=[security_headers, error_pages, require_login, check_csrf, writes_end_sharing],
        client_max_size=64 * 1024,
    )
    app[DEPS] = deps
    app[PAGES_IN_FLIGHT] = PagesInFlight()
    env = PageEnvironment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # templates ship with the code: no stat of the file per page
    )
    app[aiohttp_jinja2.APP_KEY] = env  # what aiohttp_jinja2.setup does, with this environment
    env.filters.update(Formatter(settings.default_timezone).filters())
    _routes(app)
    return app


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, dumps=json.dumps)


def _routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", auth_views.login_form)
    r.add_post("/login", auth_views.login_submit)
    r.add_post("/logout", auth_views.logout)
    r.add_get("/healthz", healthz)
    r.add_get("/", overview.overview)
    r.add_get("/nps", nps_views.nps_list)
    r.add_get("/nps/{answer_id}", answer_views.answer_page)
    r.add_get("/clients", client_views.client_list)
    r.add_get("/clients/export.{fmt}", client_views.client_export)
    r.add_get("/why", reason_views.reasons_page)
    r.add_get("/repeat", repeat_views.repeat_page)
    r.add_get("/clients/{client_id}", client_views.client_card)
    r.add_post("/clients/{client_id}/tasks", task_views.create_follow_up)
    r.add_get("/tasks", task_views.task_list)
    r.add_post("/tasks/{task_id}/take", task_views.take_task)
    r.add_post("/tasks/{task_id}/done", task_views.finish_task)
    r.add_get("/calls/{call_id}/recording", call_views.recording)
    r.add_post("/clients/{client_id}/consent", consent_views.set_consent)
    r.add_post("/clients/{client_id}/erase", erasure_views.erase_client)
    r.add_get("/outreach", outreach_views.outreach_page)
    r.add_post(
        r"/outreach/campaigns/{campaign_id}/{decision:approve|reject}",
        outreach_views.decide_campaign,
    )
    r.add_post(r"/outreach/{action:pause|resume}", outreach_views.pause_purpose)
    r.add_get("/crm", crm_views.crm_page)
    r.add_post("/crm/retry", crm_views.crm_retry)
    r.add_get("/failures", failures_views.failures_page)
    r.add_post("/failures/retry", failures_views.failures_retry)
    r.add_get("/users", user_views.user_list)
    r.add_post("/users", user_views.user_create)
    r.add_post("/users/{login}", user_views.user_update)
    r.add_static("/static/", HERE / "static", append_version=True)
