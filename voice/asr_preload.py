"""Imported only by the forkserver of the transcription pools: loads the Vosk model named by
``POVTOR_ASR_PRELOAD_MODEL`` once, before any pool process is forked from it.

It first imports the main script (``POVTOR_ASR_PRELOAD_MAIN``, as ``__mp_main__``) that every
process started by ``multiprocessing`` imports: done here once, a forked child finds it done
(Python 3.11's own ``"__main__"`` preload never receives the script's path).

Every pool process is then a fork of a process that holds the model: it starts with the model
loaded (no 1.3-1.6 s of CPU per process) and shares the model's ~500 MB of pages with the
others, copy on write (the decoding never writes them: what a recogniser composes as it goes is
its own). The forkserver runs no event loop and no thread of ours, so forking it is safe, which
forking ``povtor``'s own process (an event loop, database threads) would not be.

The forkserver may have been started with an allocator library in ``LD_PRELOAD`` (jemalloc, see
:mod:`voice.transcribe`): it is loaded by now, so it is taken out of the variable, and programs
the pool processes run (``ffmpeg``) start with the environment they would have had.

Vosk's OpenBLAS is made single-threaded here, before anything loads Vosk's library (see
:mod:`voice.transcribe`).

A model that cannot be loaded here is left alone: each pool process then loads the model
itself and reports the error as it always did.
"""

from __future__ import annotations

import atexit
import contextlib
import os

from voice import transcribe


def _forget_allocator() -> None:
    library = os.environ.pop(transcribe.ALLOCATOR_ENV, None)
    if not library:
        return
    rest = os.environ.get("LD_PRELOAD", "").split()
    if library in rest:
        rest.remove(library)
    if rest:
        os.environ["LD_PRELOAD"] = " ".join(rest)
    else:
        os.environ.pop("LD_PRELOAD", None)


def _preload() -> None:
    _forget_allocator()
    transcribe.single_threaded_blas()  # before the main script or the model loads Vosk
    main = os.environ.get(transcribe.PRELOAD_MAIN_ENV)
    if main:
        from multiprocessing import spawn

        # on failure each child imports it itself, as it would have anyway
        with contextlib.suppress(Exception):
            spawn.import_main_path(main)
    path = os.environ.get(transcribe.PRELOAD_ENV)
    if not path:
        return
    try:
        from vosk import Model, SetLogLevel

        SetLogLevel(-1)
        transcribe.preloaded[path] = Model(path)
    except Exception:  # each pool process then loads it itself and reports the error
        return
    # At its exit the forkserver leaves the model's memory to the system instead of freeing it
    # piece by piece (~0.5 s, during which it still held povtor's stdout open); it has nothing
    # else to finish.
    atexit.register(os._exit, 0)


_preload()
