"""The corpus as the trainers' `MotionDataset` (training/synthetic.py): random access.

Shard files are uncompressed zips of .npy arrays, so each array is memory-mapped where it
lies in the file: opening a 20-hour corpus reads only headers, and an utterance touches only
its own pages. Log-mel windows are computed from the stored audio by the live audio
front end's own `mel_windows` (engine/audio.py: pre-emphasis with silence before the start,
SadTalker log-mel, 16 frames around each video frame, silence past the end).

    ds = CorpusDataset("data/corpus", "train")            # phonemes="recognized" | "true"
    u = ds[17]   # MotionUtterance: phonemes (T,), mel (T, 16, 80), expr (T, 52), pose (T, 6), style
    ds.styles(), ds.lengths()                              # (N,) without touching audio
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from stylecast.engine.audio import mel_windows  # the live front end's own windows
from stylecast.engine.errors import FormatError, InputError
from stylecast.training import styles
from stylecast.training.corpus import CorpusReader

PHONEME_SOURCES = ("recognized", "true")


def open_npz_mmap(path: Path) -> dict[str, np.ndarray]:
    """Every array of an uncompressed .npz, memory-mapped read-only (no pickle)."""
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                    raise FormatError(f"{path}: member {info.filename} is compressed or not .npy")
                f.seek(info.header_offset)
                local = f.read(30)  # the local file header: name and extra lengths at 26..30
                name_len, extra_len = np.frombuffer(local[26:30], "<u2")
                f.seek(info.header_offset + 30 + int(name_len) + int(extra_len))
                version = np.lib.format.read_magic(f)
                shape, fortran, dtype = np.lib.format._read_array_header(f, version)
                if dtype.hasobject:
                    raise FormatError(f"{path}: {info.filename} holds Python objects")
                name = info.filename[: -len(".npy")]
                if int(np.prod(shape)) == 0:
                    arrays[name] = np.zeros(shape, dtype)
                    continue
                arrays[name] = np.memmap(
                    path, dtype, "r", f.tell(), shape, order="F" if fortran else "C"
                )
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise FormatError(f"{path} is not a corpus shard: {e}") from e
    return arrays


class CorpusDataset:
    """One split of a corpus, indexable; implements training.synthetic.MotionDataset."""

    n_styles = styles.N_STYLES  # style ids are global: 0 .. 1151

    def __init__(self, root: str | Path, split: str, phonemes: str = "recognized") -> None:
        if phonemes not in PHONEME_SOURCES:
            raise InputError(f"phonemes {phonemes!r} is not one of {', '.join(PHONEME_SOURCES)}")
        reader = CorpusReader(root, split)  # validates the manifest and that shards exist
        self.root = reader.root
        self.split = split
        self.phonemes = phonemes
        self._shards = [open_npz_mmap(self.root / f"{s['name']}.npz") for s in reader.shards]
        counts = [len(z["style_id"]) for z in self._shards]
        self._shard_of = np.repeat(np.arange(len(counts)), counts)  # (N,)
        self._row_of = np.concatenate([np.arange(c) for c in counts]) if counts else np.zeros(0)
        self._styles = np.concatenate([np.asarray(z["style_id"], np.int64) for z in self._shards])
        self._lengths = np.concatenate(
            [np.diff(np.asarray(z["frame_offsets"], np.int64)) for z in self._shards]
        )

    def __len__(self) -> int:
        return len(self._styles)

    def styles(self) -> np.ndarray:
        return self._styles

    def lengths(self) -> np.ndarray:
        return self._lengths

    def __getitem__(self, index: int):
        from stylecast.training.synthetic import MotionUtterance  # imports torch

        if not -len(self) <= index < len(self):
            raise IndexError(f"utterance {index} of a {len(self)}-utterance split")
        index %= len(self)
        z, i = self._shards[self._shard_of[index]], int(self._row_of[index])
        fo, ao = z["frame_offsets"], z["audio_offsets"]
        frames = slice(int(fo[i]), int(fo[i + 1]))
        audio = np.asarray(z["audio"][ao[i] : ao[i + 1]], np.float32) / 32767.0
        ids = z["phonemes_recognized" if self.phonemes == "recognized" else "phonemes_true"]
        return MotionUtterance(
            phonemes=np.asarray(ids[frames], np.int64),
            mel=mel_windows(audio),
            expr=np.asarray(z["expr"][frames], np.float32),
            pose=np.asarray(z["pose"][frames], np.float32),
            style=int(self._styles[index]),
        )
