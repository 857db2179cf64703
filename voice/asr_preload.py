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

The model loads in a thread while the forkserver imports the pool's code and the main script
(~0.4 s of CPU, numpy, SQLAlchemy and pydantic among it): Vosk loads it in C, through cffi,
which lets go of Python's lock, so both run at once on a second core that is otherwise waiting
for the pool. The thread is joined before the forkserver forks anything.

With the model loaded, the forkserver sets up one recogniser at the recordings' rate on half a
second of faint noise (:func:`voice.decode.warm_recogniser`): each pool process starts with it
instead of paying the ~0.5 s of CPU a new recogniser's first region costs.

A model that cannot be loaded here is left alone: each pool process then loads the model
itself and reports the error as it always did.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from typing import Any

from voice.asr_env import ALLOCATOR_ENV, PRELOAD_ENV, PRELOAD_MAIN_ENV, single_threaded_blas


def _forget_allocator() -> None:
    library = os.environ.pop(ALLOCATOR_ENV, None)
    if not library:
        return
    rest = os.environ.get("LD_PRELOAD", "").split()
    if library in rest:
        rest.remove(library)
    if rest:
        os.environ["LD_PRELOAD"] = " ".join(rest)
    else:
        os.environ.pop("LD_PRELOAD", None)


class _ModelLoad:
    """The model of ``path`` loading in a thread; :meth:`result` waits for it (None: failed,
    and each pool process then loads it itself and reports the error)."""

    def __init__(self, path: str) -> None:
        self.model: Any = None
        self._thread: threading.Thread | None = None
        try:  # on this thread: imports on two threads at once can wait on each other's locks
            from vosk import Model, SetLogLevel
        except ImportError:
            return
        SetLogLevel(-1)
        self._thread = threading.Thread(target=self._load, args=(Model, path), daemon=True)
        self._thread.start()

    def _load(self, model_class: Any, path: str) -> None:
        with contextlib.suppress(Exception):  # vosk raises a bare Exception for a bad folder
            self.model = model_class(path)

    def result(self) -> Any:
        if self._thread is not None:
            self._thread.join()
        return self.model


def _preload() -> None:
    _forget_allocator()
    single_threaded_blas()  # before the main script or the model loads Vosk
    path = os.environ.get(PRELOAD_ENV)
    load = _ModelLoad(path) if path else None
    from voice import transcribe  # what every pool process runs, imported while the model loads

    main = os.environ.get(PRELOAD_MAIN_ENV)
    if main:
        from multiprocessing import spawn

        # on failure each child imports it itself, as it would have anyway
        with contextlib.suppress(Exception):
            spawn.import_main_path(main)
    model = load.result() if load is not None else None
    if path is None or model is None:
        return
    transcribe.preloaded[path] = model
    from voice.audio import RATE
    from voice.decode import warm_recogniser

    with contextlib.suppress(Exception):  # a pool process then makes its own, as before
        transcribe.warmed[path] = warm_recogniser(model, RATE)
    # At its exit the forkserver leaves the model's memory to the system instead of freeing it
    # piece by piece (~0.5 s, during which it still held povtor's stdout open); it has nothing
    # else to finish.
    atexit.register(os._exit, 0)


_preload()
