"""Choosing the voice: settings and a scenario's ``speech`` options in, a SpeechSynth out.

Piper when its voice is installed; otherwise espeak-ng, with a warning that says how to get the
Piper voice (a call with a robotic voice beats no call). Synthesisers are shared: one per
(engine, voice, speed), and one loaded Piper model per voice file for the whole process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from povtor.errors import ModelError
from povtor.ports import SpeechSynth
from povtor.settings import Settings
from voice.piper import PiperSynth, PiperVoice, VoiceFiles
from voice.piper_voices import resolve_voice
from voice.scenario import Speech
from voice.tts import EspeakSynth

log = logging.getLogger(__name__)


@dataclass
class Synths:
    """Builds and shares synthesisers for one process."""

    settings: Settings
    _made: dict[tuple[str, str, float], SpeechSynth] = field(default_factory=dict)
    _voices: dict[Path, PiperVoice] = field(default_factory=dict)

    @property
    def prompts_dir(self) -> Path:
        return self.settings.data_dir / "prompts"

    def for_speech(self, speech: Speech | None = None) -> SpeechSynth:
        """The synthesiser for a scenario's ``speech`` (None: the settings alone)."""
        options = self.settings.call
        speech = speech or Speech()
        engine = speech.engine or options.tts_engine
        if engine == "piper":
            choice = speech.voice or options.piper_voice
            try:
                model = resolve_voice(choice, self.settings.voices_dir)
            except ModelError as err:
                log.warning("Speaking with espeak-ng instead of Piper: %s", err)
            else:
                return self._piper(model, speech.speed or options.piper_speed)
            return self._espeak(options.tts_voice, options.tts_speed)
        return self._espeak(speech.voice or options.tts_voice, speech.speed or options.tts_speed)

    def _piper(self, model: Path, speed: float) -> SpeechSynth:
        key = ("piper", str(model), float(speed))
        if key not in self._made:
            voice = self._voices.get(model)
            if voice is None:
                voice = self._voices[model] = PiperVoice(VoiceFiles.beside(model))
            self._made[key] = PiperSynth(self.prompts_dir, voice, speed=speed)
        return self._made[key]

    def _espeak(self, voice: str, speed: float) -> SpeechSynth:
        key = ("espeak", voice, float(speed))
        if key not in self._made:
            self._made[key] = EspeakSynth(self.prompts_dir, voice=voice, speed=speed)
        return self._made[key]
