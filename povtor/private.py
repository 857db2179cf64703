"""Folders for personal data (databases, call recordings): owner-only from the start."""

from __future__ import annotations

from pathlib import Path


def make_private_dir(path: Path) -> None:
    """``mkdir -p`` where every folder it creates is 0700 (``Path.mkdir(parents=True)`` gives
    the parents the default mode); folders that exist keep theirs."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
