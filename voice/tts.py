"""Speech synthesis for the voice robot, cached on disk: espeak-ng, or a Piper neural voice.

Both implement ``povtor.ports.SpeechSynth`` (text in, 8 kHz 16-bit mono PCM out, what the call
engine plays). espeak-ng runs as an external program (never linked) and needs no download; a
Piper voice (``voice.piper``) sounds like a person and needs its model fetched. Each prompt is
kept as a WAV in ``DATA_DIR/prompts`` under a hash of (engine, voice, speed, text), so a
greeting said to a thousand clients is synthesised once, and a business can listen to what
the robot says.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import wave
from collections import OrderedDict
from pathlib import Path

from povtor.errors import AudioError, ConfigError

log = logging.getLogger(__name__)

RATE = 8000
_ENGINE = "espeak-ng+sox/1"  # part of the cache key: bump when the pipeline changes
_MEMORY_ITEMS = 64
_TIMEOUT_S = 30.0
_RAW_OUT = ("-e", "signed", "-b", "16", "-c", "1", "-L", "-")


def prompt_key(text: str, voice: str, speed: float, engine: str = _ENGINE) -> str:
    """The cache key of one prompt: the same words in the same voice give the same key."""
    raw = "\x1f".join((engine, voice, str(speed), " ".join(text.split())))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def write_wav(path: Path, pcm: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    os.replace(tmp, path)


def _read_wav(path: Path) -> bytes | None:
    try:
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (RATE, 2, 1):
                return None
            return wav.readframes(wav.getnframes())
    except FileNotFoundError:
        return None
    except (wave.Error, EOFError, OSError):
        log.warning("Prompt cache file %s is unreadable; synthesising again", path.name)
        return None


async def run_program(args: list[str], stdin: bytes | None = None) -> bytes:
    """Run an external program (espeak-ng, sox) and return what it printed; AudioError if not."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            out, err = await process.communicate(stdin)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AudioError(f"{args[0]} did not finish in {_TIMEOUT_S:.0f} s") from None
    if process.returncode != 0:
        message = err.decode(errors="replace").strip()[-300:]
        raise AudioError(f"{args[0]} failed ({process.returncode}): {message}")
    return out


def require_programs(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            raise ConfigError(f"{program} is not installed (apt-get install {program})")


async def resample(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM at ``rate`` to the call's 8 kHz (sox: band-limited, no aliasing)."""
    if rate == RATE:
        return pcm
    return await run_program(
        ["sox", "-t", "raw", "-r", str(rate), *_RAW_OUT[:-1], "-", "-t", "raw", "-r", str(RATE),
         *_RAW_OUT],
        stdin=pcm,
    )  # fmt: skip


class CachedSynth:
    """The cache shared by the engines: memory, then ``folder``, then :meth:`make`.

    Concurrent requests for one text share the work; a subclass names its ``engine``, ``voice``
    and ``speed`` (all in the cache key) and implements ``make``."""

    engine = "?"

    def __init__(self, folder: Path, *, voice: str, speed: float) -> None:
        self.folder = Path(folder)
        self.voice = voice
        self.speed = speed
        self.synthesised = 0  # prompts that were not in the cache
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bytes]] = {}

    def key(self, text: str) -> str:
        return prompt_key(text, self.voice, self.speed, self.engine)

    def path_for(self, text: str) -> Path:
        return self.folder / f"{self.key(text)}.wav"

    async def make(self, text: str) -> bytes:
        """8 kHz 16-bit mono PCM of ``text`` (not cached yet)."""
        raise NotImplementedError

    async def synth(self, text: str) -> bytes:
        """8 kHz 16-bit mono PCM of ``text``; concurrent requests for one text share the work."""
        if not text.strip():
            return b""
        key = self.key(text)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            pcm = await self._load_or_make(text, self.folder / f"{key}.wav")
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: waiters get it, nobody else has to
            raise
        finally:
            del self._pending[key]
        future.set_result(pcm)
        self._memory[key] = pcm
        if len(self._memory) > _MEMORY_ITEMS:
            self._memory.popitem(last=False)
        return pcm

    async def _load_or_make(self, text: str, path: Path) -> bytes:
        cached = await asyncio.to_thread(_read_wav, path)
        if cached is not None:
            return cached
        pcm = await self.make(text)
        if not pcm:
            raise AudioError(f"{self.engine} produced no audio")
        self.synthesised += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(write_wav, path, pcm)
        return pcm


class EspeakSynth(CachedSynth):
    """espeak-ng (+ sox): formant speech, robotic but always there (no download)."""

    engine = _ENGINE

    def __init__(self, folder: Path, *, voice: str = "ru", speed: float = 150) -> None:
        require_programs("espeak-ng", "sox")
        super().__init__(folder, voice=voice, speed=int(speed))

    async def make(self, text: str) -> bytes:
        wav = await run_program(
            [
                "espeak-ng",
                "-v",
                self.voice,
                "-s",
                str(self.speed),
                "--stdin",
                "--stdout",
                "-b",
                "1",
            ],
            stdin=text.encode(),
        )
        return await run_program(
            ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), *_RAW_OUT],
            stdin=wav,
        )
