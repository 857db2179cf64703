"""The dashboard's output escaping writes what stock Jinja2 with markupsafe writes."""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pytest
from markupsafe import Markup

from dashboard.formatting import Formatter
from dashboard.rendering import PageEnvironment, escape_output


class Kind(StrEnum):
    CALL = "call"


class Level(IntEnum):
    HIGH = 3


class Html:
    def __repr__(self) -> str:
        return "Html()"

    def __html__(self) -> str:
        return "<b>готово</b>"


VALUES = [
    "Иван Петров",
    "",
    "<script>alert('x')</script>",
    'ООО "Ромашка" & сыновья',
    "a > b < c",
    Markup("<em>уже безопасно</em>"),
    12345,
    -7,
    True,
    3.5,
    Decimal("2490.00"),
    None,
    Kind.CALL,
    Level.HIGH,
    Html(),
    ["<li>", 1],
]

TEMPLATE = """
{%- macro cell(v) %}<td title="{{ v }}">{{ v }}</td>{% endmacro -%}
{% set block %}<i>{{ values[2] }}</i>{% endset -%}
{% for v in values %}<p data-x="{{ v }}">{{ v }}|{{ v | string | upper }}|{{ cell(v) }}</p>
{% endfor %}{{ block }}{{ block | length }}{{ values[3] ~ values[5] }}{{ values[2] | safe }}
{% filter upper %}{{ values[2] }}{% endfilter %}
{% autoescape false %}{{ values[2] }}{% endautoescape %}
"""


def _both(**options: object) -> tuple[jinja2.Environment, jinja2.Environment]:
    settings: dict[str, Any] = {"autoescape": True, "undefined": jinja2.StrictUndefined}
    settings.update(options)
    return PageEnvironment(**settings), jinja2.Environment(**settings)


def test_every_kind_of_value_is_written_as_stock_jinja2_writes_it() -> None:
    ours, stock = _both()
    rendered = ours.from_string(TEMPLATE).render(values=VALUES)
    assert rendered == stock.from_string(TEMPLATE).render(values=VALUES)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in rendered
    assert "ООО &#34;Ромашка&#34; &amp; сыновья" in rendered


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_escape_output_is_markupsafes_escape_as_text(value: object) -> None:
    assert escape_output(value) == str(markupsafe.escape(value))


def test_templates_write_values_through_the_dashboards_escaping() -> None:
    """Should Jinja2 stop calling the hook, pages stay right but lose the saving: say so."""
    ours, _ = _both()
    assert "environment.escape_output(" in ours.compile("{{ x }}", raw=True)


def test_every_dashboard_template_compiles_with_it() -> None:
    folder = Path(__file__).parents[3] / "dashboard" / "templates"
    ours, _ = _both(loader=jinja2.FileSystemLoader(folder))
    ours.filters.update(Formatter("Europe/Moscow").filters())
    for path in sorted(folder.glob("*.html")):
        assert ours.get_template(path.name) is not None
