"""A pool process keeps one Vosk recogniser for all its files (``voice.decode.Recogniser``):
what it finds must be exactly what new recognisers find.

Vosk's output for a file depends on what the same process decoded before (state shared through
the model), whether the recogniser is new or not; so each way is run in a fresh process with the
same history: one file decoded first, then the call.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from povtor.ports import Transcript
from tests.integration.voice_asr.conftest import CallFile
from voice.audio import RATE, load_audio
from voice.decode import DecodeOptions, Recogniser, decode_audio
from voice.vad import Region

pytestmark = pytest.mark.asr


def _history_then_call(model_path: str, history: str, call: str, reuse: bool) -> Transcript:
    from vosk import Model, SetLogLevel

    SetLogLevel(-1)
    model = Model(model_path)
    recogniser = Recogniser(model, RATE) if reuse else None  # None: a new one per channel
    decode_audio(model, load_audio(Path(history)), history, DecodeOptions(), recogniser)
    return decode_audio(model, load_audio(Path(call)), call, DecodeOptions(), recogniser)


class _ReadFails:
    """Samples whose reading fails past ``at`` (a file on a disk that went away)."""

    def __init__(self, samples: np.ndarray, at: int) -> None:
        self.samples, self.at = samples, at

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, part: slice) -> Any:
        if part.start >= self.at:
            raise OSError("read failed")
        return self.samples[part]


def _fail_mid_region(model_path: str, call: str) -> tuple[list[str], bool]:
    """(the errors of a region whose reading fails and of the next region, broken between)."""
    from vosk import Model, SetLogLevel

    SetLogLevel(-1)
    recogniser = Recogniser(Model(model_path), RATE)
    client = load_audio(Path(call)).channels[1].samples
    whole = Region(0, len(client))
    errors: list[str] = []
    try:
        recogniser.decode(_ReadFails(client, RATE), whole, "client", [])  # type: ignore[arg-type]
    except OSError as err:
        errors.append(str(err))
    broken = recogniser.broken
    try:
        recogniser.decode(client, whole, "client", [])
    except RuntimeError as err:
        errors.append(str(err))
    return errors, broken


def _spawned() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def test_a_reused_recogniser_finds_the_words_times_and_confidences_new_ones_find(
    ko_model: Path, call_file: CallFile, voice_message: Path
) -> None:
    args = (str(ko_model), str(voice_message), str(call_file.path))
    with _spawned() as reused_side, _spawned() as new_side:
        reused = reused_side.submit(_history_then_call, *args, True)
        new = new_side.submit(_history_then_call, *args, False)
        reused_transcript, new_transcript = reused.result(), new.result()

    assert {s.speaker for s in new_transcript.segments} == {"robot", "client"}
    assert reused_transcript == new_transcript  # every segment, word, time and confidence


def test_a_recogniser_that_failed_mid_region_is_not_used_again(
    ko_model: Path, call_file: CallFile
) -> None:
    with _spawned() as side:
        errors, broken = side.submit(_fail_mid_region, str(ko_model), str(call_file.path)).result()

    assert broken
    assert errors == ["read failed", "a recogniser that failed mid-region is not reused"]
