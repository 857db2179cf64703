"""A pool of processes that transcribe files, each process holding one loaded Vosk model.

Implements :class:`povtor.ports.Transcriber`. Processes are forked from Python's forkserver
(never from a process running an event loop and threads), which loads the model before the first
fork (:mod:`voice.asr_preload`): every process starts with it and shares its pages; where there is
no forkserver (not POSIX), or it holds another model, the initializer loads the model, once per
process. A task carries only a path and options. Each process also keeps one recogniser for all
its files (:class:`voice.decode.Recogniser`: the decoding graph it composes as it goes stays
cached, about half the CPU per file once warm); forked from the forkserver, it starts with the
one the forkserver set up (:func:`voice.decode.warm_recogniser`). A command that knows it will
transcribe starts the forkserver early (:func:`start_loading`), so the model loads meanwhile.

The forkserver, and so every pool process, runs on jemalloc where the system has it
(``libjemalloc.so.2``, Debian's ``libjemalloc2``; ``POVTOR_ASR_ALLOCATOR=system`` keeps glibc's):
Vosk's decoder allocates and frees small objects all the time (tokens, the composed graph's
states), and glibc's malloc took about 15 % of the decoding CPU (``malloc_consolidate``,
``_int_malloc``, ``_int_free``). Scores differ in their last digits (the acoustic model's matrix
products run on differently aligned memory), and now and then a word the model was torn over
comes out the other way; each allocator alone is deterministic.

Each pool process decodes one stream on one core, so Vosk's OpenBLAS runs single-threaded
(``OPENBLAS_NUM_THREADS=1`` unless set otherwise, before Vosk's library loads): by default it
starts a thread per further core, which only competed with the other pool processes, and the
decoding took about an eighth more CPU; the words are the same.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import functools
import logging
import multiprocessing
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import spawn
from multiprocessing.context import BaseContext
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from povtor.errors import AudioError, ModelError
from povtor.ports import Transcript
from voice.asr_env import ALLOCATOR_ENV, PRELOAD_ENV, PRELOAD_MAIN_ENV, single_threaded_blas
from voice.decode import DecodeOptions, Recogniser, decode_audio

log = logging.getLogger(__name__)

_model: Any = None  # the model of this pool process, set once by _init_process
_recogniser: Recogniser | None = None  # this pool process's recogniser, made by the first file
PRELOAD_MODULES = ["voice.asr_preload"]
Allocator = Literal["jemalloc", "system"]
preloaded: dict[str, Any] = {}  # model folder -> model, loaded in the forkserver before forking
warmed: dict[str, Recogniser] = {}  # model folder -> its recogniser, set up in the forkserver


def _init_process(model_path: str) -> None:
    global _model, _recogniser
    if model_path in preloaded:  # forked from the forkserver that loaded it
        _model = preloaded[model_path]
        _recogniser = warmed.get(model_path)
        return
    single_threaded_blas()
    from vosk import Model, SetLogLevel

    SetLogLevel(-1)
    try:
        _model = Model(model_path)
    except Exception as err:  # vosk raises a bare Exception when the folder is not a model
        raise ModelError(f"cannot load model {model_path}: {err}") from err


def _transcribe_in_process(path: str, options: DecodeOptions) -> Transcript:
    global _recogniser
    from voice.audio import load_audio

    if _model is None:
        raise ModelError("the pool process has no model loaded")
    audio = load_audio(
        Path(path), skip_robot=options.skip_robot, max_duration_s=options.max_duration_s
    )
    if _recogniser is None or _recogniser.broken or _recogniser.rate != audio.rate:
        _recogniser = Recogniser(_model, audio.rate)
    return decode_audio(_model, audio, path, options, _recogniser)


def _warm(_: int) -> int:
    return os.getpid()


def default_workers(requested: int = 0) -> int:
    """``requested`` processes, or one per core available to this process."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class TranscriberPool:
    """Transcribes files in a process pool; use as an (async) context manager or call close().

    A decoder process that dies (a crash in the native decoder, the kernel's OOM killer) breaks
    the whole pool and fails every file in it. The pool is then started again, and each file
    that was in it is tried once more alone, in a one-process quarantine pool: a file that
    kills that process too is the cause and fails with :class:`AudioError` (stored as failed by
    the batch); the others are transcribed as usual.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        workers: int = 0,
        options: DecodeOptions | None = None,
        allocator: Allocator = "jemalloc",
    ) -> None:
        if not model_path.is_dir():
            raise ModelError(f"model folder not found: {model_path}")
        self.model_path = model_path
        self.workers = default_workers(workers)
        self.options = options or DecodeOptions()
        self.allocator = allocator
        self._executor = self._new_executor(self.workers)
        self._quarantine: ProcessPoolExecutor | None = None
        self._quarantine_lock = asyncio.Lock()
        self.restarts = 0  # times the pool was started again after a process died
        self._closed = False

    def _new_executor(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_context(self.model_path),
            initializer=_init_process,
            initargs=(str(self.model_path),),
        )

    async def transcribe(self, path: Path, options: DecodeOptions | None = None) -> Transcript:
        executor = self._executor
        _start_forkserver(self.allocator)
        try:
            return await asyncio.wrap_future(
                executor.submit(_transcribe_in_process, str(path), options or self.options)
            )
        except BrokenProcessPool:
            if self._closed:
                raise ModelError("the transcription pool is closed") from None
            self._restart(executor)
        return await self._alone(path, options or self.options)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        """Replace a broken executor (once, however many files saw it break)."""
        if self._executor is broken:
            log.warning("a transcription process died; starting the pool again")
            self._executor = self._new_executor(self.workers)
            self.restarts += 1
            broken.shutdown(wait=False, cancel_futures=True)

    async def _alone(self, path: Path, options: DecodeOptions) -> Transcript:
        """One more try of a file that was in a pool when a process died, with no other file
        beside it: if the process dies again, the file is the cause."""
        async with self._quarantine_lock:
            if self._quarantine is None:
                self._quarantine = self._new_executor(1)
            quarantine = self._quarantine
            _start_forkserver(self.allocator)
            try:
                return await asyncio.wrap_future(
                    quarantine.submit(_transcribe_in_process, str(path), options)
                )
            except BrokenProcessPool:
                self._quarantine = None
                quarantine.shutdown(wait=False, cancel_futures=True)
                log.warning("a transcription process died twice on %s", path.name)
                raise AudioError(
                    "the decoder process died on this file twice (a crash in the decoder, "
                    "or it ran out of memory)"
                ) from None

    def pids(self) -> list[int]:
        """The process ids of the pool (diagnostics, tests)."""
        return _pids(self._executor)

    def quarantine_pids(self) -> list[int]:
        """The process id of the quarantine pool, once a process has died."""
        return _pids(self._quarantine)

    async def warm_up(self) -> None:
        """Start every process and load the model in each (otherwise the first files wait)."""
        loop = asyncio.get_running_loop()
        _start_forkserver(self.allocator)
        try:
            await asyncio.gather(
                *(loop.run_in_executor(self._executor, _warm, i) for i in range(self.workers))
            )
        except BrokenProcessPool as err:
            raise ModelError(f"cannot start transcription processes: {err}") from err

    def close(self, *, cancel: bool = False) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=cancel)
        if self._quarantine is not None:
            self._quarantine.shutdown(wait=True, cancel_futures=cancel)
            self._quarantine = None

    async def aclose(self, *, cancel: bool = False) -> None:
        await asyncio.to_thread(self.close, cancel=cancel)

    def __enter__(self) -> TranscriberPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel=exc is not None)

    async def __aenter__(self) -> TranscriberPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(cancel=exc is not None)


def _context(model_path: Path) -> BaseContext:
    """The forkserver, told which model to load before it forks (read when it starts: the
    first pool to start a process decides it for the life of this process); else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    os.environ[PRELOAD_ENV] = str(model_path)
    main = spawn.get_preparation_data("transcriber").get("init_main_from_path")
    if main:  # each child would import it again if the forkserver had not
        os.environ[PRELOAD_MAIN_ENV] = str(main)
    else:
        os.environ.pop(PRELOAD_MAIN_ENV, None)
    context.set_forkserver_preload(PRELOAD_MODULES)
    return context


_forkserver_lock = threading.Lock()


def _start_forkserver(allocator: Allocator) -> None:
    """Start the forkserver (if this process uses one and it is not running yet) with the
    allocator library in ``LD_PRELOAD``, so it and every process forked from it allocate with it.
    Only the forkserver's own start sees the variable: it is put back at once here, and taken out
    again in the forkserver (:mod:`voice.asr_preload`), so programs it runs do not inherit it."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    library = allocator_library(allocator)
    start = _forkserver_path()
    if library is not None:
        before = os.environ.get("LD_PRELOAD")
        start |= {"LD_PRELOAD": f"{library} {before}" if before else library}
        start[ALLOCATOR_ENV] = library
    with _forkserver_lock:
        kept = {name: os.environ.get(name) for name in start}
        os.environ.update(start)
        try:
            forkserver.ensure_running()
        finally:
            for name, value in kept.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _forkserver_path() -> dict[str, str]:
    """The forkserver imports from this process's own path. It starts as ``python -c``, which
    would put its working directory first and (Python 3.11) ignore the path it is given: run
    from a folder holding a ``voice/`` or a ``numpy.py``, it would import those instead."""
    paths = [entry or os.getcwd() for entry in sys.path]
    return {"PYTHONSAFEPATH": "1", "PYTHONPATH": os.pathsep.join(paths)}


def start_loading(model_path: Path, allocator: Allocator = "jemalloc") -> None:
    """Start the forkserver, and so the model's load, now: a pool made later with this model
    forks its processes from it, and the load runs while the caller does other work (opens its
    database, hashes its files). Nothing is started where there is no forkserver (not POSIX)."""
    _context(model_path)
    _start_forkserver(allocator)


@functools.cache
def allocator_library(allocator: Allocator) -> str | None:
    """The shared library of ``allocator`` to preload, None for the system's own (or when the
    library is not installed)."""
    if allocator == "system":
        return None
    return ctypes.util.find_library(allocator)


def _pids(executor: ProcessPoolExecutor | None) -> list[int]:
    return list(getattr(executor, "_processes", None) or {})  # None until the first submit


__all__ = ["AudioError", "DecodeOptions", "TranscriberPool", "default_workers"]
