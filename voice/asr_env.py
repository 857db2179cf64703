"""What the transcription pool tells its forkserver (:mod:`voice.asr_preload`) through the
environment the forkserver starts with.

A module of its own, importing nothing, so the forkserver can read it and start loading the
model before it imports the pool's code (:mod:`voice.transcribe` and what that imports).
"""

from __future__ import annotations

import os

PRELOAD_ENV = "POVTOR_ASR_PRELOAD_MODEL"  # the model the forkserver loads
PRELOAD_MAIN_ENV = "POVTOR_ASR_PRELOAD_MAIN"  # the main script the forkserver imports first
ALLOCATOR_ENV = "POVTOR_ASR_PRELOADED_ALLOCATOR"  # the library preloaded into the forkserver


def single_threaded_blas() -> None:
    """OpenBLAS (inside Vosk's library) one thread; read once, when the library loads."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
