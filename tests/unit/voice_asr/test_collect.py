"""Which files a batch takes from the folders it is given."""

from __future__ import annotations

from pathlib import Path

from voice.asr_batch import collect_files, is_partial, unreadable_key


def test_folders_give_finished_audio_files_and_skip_partial_ones(tmp_path: Path) -> None:
    for name in ["b.wav", "a.OGG", "c.wav.part", "d.wav.tmp", ".hidden.wav", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.mp3").write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in collect_files([tmp_path])]
    assert names == ["a.OGG", "b.wav", "sub/e.mp3"]


def test_files_named_explicitly_are_taken_once_whatever_their_name(tmp_path: Path) -> None:
    odd = tmp_path / "recording.bin"
    odd.write_bytes(b"x")
    assert collect_files([odd, tmp_path / "." / "recording.bin"]) == [odd]


def test_partial_names() -> None:
    assert is_partial(Path("x.wav.part"))
    assert is_partial(Path("x.tmp.wav"))
    assert not is_partial(Path("call-1.wav"))


def test_unreadable_files_get_a_stable_key_of_their_path(tmp_path: Path) -> None:
    assert unreadable_key(tmp_path / "x.wav") == unreadable_key(tmp_path / "x.wav")
    assert unreadable_key(tmp_path / "x.wav") != unreadable_key(tmp_path / "y.wav")
