"""What a request gets from a page made with placeholders: its own login and CSRF token, shared
or not (a page that is not shared, such as a 404, is still written with the user's values)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from dashboard.context import PAGES_IN_FLIGHT, SHARED_RENDER
from dashboard.roles import Role
from dashboard.shared_pages import PagesInFlight
from dashboard.users import Session, User

ANNA = Session(User(1, "anna<&>", Role.MANAGER), "token-anna", datetime(2030, 1, 1, tzinfo=UTC))


def _request(in_flight: PagesInFlight) -> web.Request:
    app = web.Application()
    app[PAGES_IN_FLIGHT] = in_flight
    return make_mocked_request("GET", "/tasks", app=app)


async def _render(request: web.Request, status: int) -> web.Response:
    placeholders = request[SHARED_RENDER]
    return web.Response(
        text=f"<p>{placeholders.login}</p><input value={placeholders.csrf}>", status=status
    )


async def test_a_page_that_is_not_shared_still_gets_the_users_own_values() -> None:
    in_flight = PagesInFlight()

    async def not_found(request: web.Request) -> web.StreamResponse:
        return await _render(request, 404)

    response = await in_flight.serve(_request(in_flight), not_found, ANNA, None)
    assert isinstance(response, web.Response)
    assert response.status == 404
    assert response.body == b"<p>anna&lt;&amp;&gt;</p><input value=token-anna>"


async def test_a_shared_page_is_written_with_the_users_own_values_escaped() -> None:
    in_flight = PagesInFlight()

    async def page(request: web.Request) -> web.StreamResponse:
        return await _render(request, 200)

    response = await in_flight.serve(_request(in_flight), page, ANNA, None)
    assert isinstance(response, web.Response)
    assert response.body == b"<p>anna&lt;&amp;&gt;</p><input value=token-anna>"
    assert response.content_type == "text/plain"
