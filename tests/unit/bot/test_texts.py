from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError

from bot.texts import SHIPPED, Texts
from povtor.errors import ConfigError


def test_shipped_texts_load_and_say_the_call_script_questions() -> None:
    texts = Texts(company="Кофейни Зерно")
    assert texts("nps_ask_high") == "Что позволило нам получить такую высокую оценку?"
    assert texts("nps_ask_improve") == "Что нам улучшить, чтобы вы поставили десятку?"
    assert "Кофейни Зерно" in texts("nps_question", name="Анна")
    assert len(texts.names) > 40


def test_a_business_override_replaces_only_its_keys(tmp_path: Path) -> None:
    custom = tmp_path / "texts.yaml"
    custom.write_text('help: "Пишите нам: {{ company }}"\n', encoding="utf-8")
    texts = Texts(custom, company="Зерно")
    assert texts("help") == "Пишите нам: Зерно"
    assert texts("stop_done").startswith("Вы отписались")


def test_unknown_keys_in_an_override_are_reported(tmp_path: Path) -> None:
    custom = tmp_path / "texts.yaml"
    custom.write_text('helpp: "опечатка"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="helpp"):
        Texts(custom)


def test_shipped_file_is_where_the_settings_docs_say() -> None:
    assert SHIPPED.name == "ru.yaml"
    assert SHIPPED.exists()


def test_texts_with_values_are_rendered_per_call_and_a_missing_value_always_fails() -> None:
    texts = Texts(company="Зерно")
    assert texts("help") == texts("help")  # no values: rendered once, the same text after
    assert "Анна" in texts("nps_question", name="Анна")
    assert "Борис" in texts("nps_question", name="Борис")
    for _ in range(2):  # a failed render is not remembered as a text
        with pytest.raises(UndefinedError, match="name"):
            texts("nps_question")
