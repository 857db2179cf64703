"""Shipped scenario files load and pass the checks; broken files are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from povtor.domain import Purpose
from povtor.errors import ConfigError
from voice.scenario import (
    DEFAULT_DISCLOSURE,
    DEFAULT_TRANSFER_FAILED,
    SHIPPED,
    TEMPLATE_VALUES,
    load_scenario,
    load_scenarios,
    render,
)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_each_shipped_scenario_loads_and_renders(purpose: Purpose) -> None:
    scenario = load_scenario(SHIPPED / f"{purpose.value}.yaml")
    assert scenario.purpose is purpose
    for _, text in scenario.texts():
        spoken = render(text, TEMPLATE_VALUES)
        assert spoken
        assert "{" not in spoken


def test_nps_script_follows_the_quality_department_wording() -> None:
    nps = load_scenarios()[Purpose.NPS]
    texts = " ".join(render(t, TEMPLATE_VALUES) for _, t in nps.texts())
    assert "голосовой робот независимого отдела контроля качества кофейни «Зерно»" in texts
    assert "Порекомендуете ли вы нас друзьям и знакомым" in texts
    assert "Что позволило нам получить такую высокую оценку?" in texts
    assert "Что нам улучшить, чтобы вы поставили десятку?" in texts
    assert nps.steps["score"].next_for("promoter") == "ask_high"
    assert nps.steps["score"].next_for("detractor") == "ask_improve"


def test_winback_asks_the_two_churn_questions() -> None:
    texts = " ".join(t for _, t in load_scenarios()[Purpose.WINBACK].texts())
    assert "Почему вы перестали у нас покупать?" in texts
    assert "Что нам сделать, чтобы вы вернулись?" in texts


def test_a_business_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    text = (SHIPPED / "nps.yaml").read_text(encoding="utf-8")
    (tmp_path / "nps.yaml").write_text(text.replace("Всего доброго!", "Хорошего дня!"))
    scenarios = load_scenarios(tmp_path)
    assert "Хорошего дня!" in scenarios[Purpose.NPS].steps["thanks"].say
    assert scenarios[Purpose.REORDER].folder == SHIPPED


@pytest.mark.parametrize("purpose", list(Purpose))
def test_every_shipped_call_opens_saying_who_calls_that_it_is_a_robot_and_recorded(
    purpose: Purpose,
) -> None:
    scenario = load_scenarios()[purpose]
    assert scenario.disclosure is not None
    said = render(scenario.disclosure, TEMPLATE_VALUES)
    assert "голосовой робот" in said
    assert "кофейни «Зерно»" in said
    assert "Разговор записывается" in said


def test_a_file_without_disclosure_still_gets_one(tmp_path: Path) -> None:
    text = (SHIPPED / "winback.yaml").read_text(encoding="utf-8")
    start = text.index("disclosure:")
    end = text.index("steps:")
    (tmp_path / "winback.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    default = load_scenario(tmp_path / "winback.yaml")
    assert default.disclosure == DEFAULT_DISCLOSURE
    own = load_scenario(tmp_path / "winback.yaml", "Это робот. Звонок записывается.")
    assert own.disclosure == "Это робот. Звонок записывается."


BROKEN = {
    "unknown step": ("next: thanks", "next: thank_you"),
    "unknown answer": ("promoter: ask_high", "superfan: ask_high"),
    "unreachable step": ("none: no_score", "none: thanks"),
    "template error": ("{{ company|gent }}", "{{ company|gent "),
    "unknown variable": ("{{ company|gent }}", "{{ companyy }}"),
    "unknown filter": ("{{ company|gent }}", "{{ company|genitive }}"),
    "typo in a key": ("retries: 1", "retrys: 1"),
    "missing recording": ("save: reason\n    retries: 0", "save: reason\n    audio: x.wav"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scenario_is_refused(tmp_path: Path, case: str) -> None:
    old, new = BROKEN[case]
    text = (SHIPPED / "nps.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "nps.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nps\.yaml"):
        load_scenario(path)


def test_recorded_prompt_is_found_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "hello.wav").write_bytes(b"RIFF")
    text = (SHIPPED / "nps.yaml").read_text(encoding="utf-8")
    text = text.replace("  greeting:\n", "  greeting:\n    audio: hello.wav\n", 1)
    (tmp_path / "nps.yaml").write_text(text, encoding="utf-8")
    scenario = load_scenario(tmp_path / "nps.yaml")
    audio = scenario.steps["greeting"].audio
    assert audio is not None
    assert scenario.audio_path(audio) == tmp_path / "hello.wav"


def test_a_transfer_step_adds_the_failure_text_and_cannot_also_ask(tmp_path: Path) -> None:
    path = tmp_path / "nps.yaml"
    path.write_text(
        "purpose: nps\nstart: offer\ntransfer_to: '+74950000000'\nsteps:\n"
        "  offer: {say: 'Соединяю.', transfer: true, next: bye}\n"
        "  bye: {say: 'До свидания.'}\n",
        encoding="utf-8",
    )
    scenario = load_scenario(path)
    assert scenario.steps["offer"].transfer
    assert scenario.transfer_to == "+74950000000"
    assert ("transfer_failed_say", DEFAULT_TRANSFER_FAILED) in scenario.texts()
    path.write_text(
        "purpose: nps\nstart: offer\nsteps:\n"
        "  offer: {say: 'Соединить?', ask: intent, transfer: true}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="cannot also `ask`"):
        load_scenario(path)
    plain = load_scenarios()[Purpose.NPS].model_copy(update={"handover": None})
    assert "transfer_failed_say" not in dict(plain.texts())  # said only where it can happen
