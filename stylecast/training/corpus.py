"""The synthetic multi-style talking corpus: plan, synthesize in shards, read back.

`plan(config)` turns (hours, seed) into shards of utterance specs (sentence, voice, style,
performer seed), all decided up front, so a shard's content depends on the seed alone.
`synthesize(config, out_dir, workers)` makes the missing shards, one worker process per
core, each with its own espeak-ng (the library has global state) and phone recognizer.
`CorpusReader` reads them back lazily, one shard at a time. docs/corpus.md has the format.

Per utterance: espeak-ng speech (training/tts.py) -> the procedural performer
(training/performer.py: expr[T,52], pose[T,6]) and the streaming phone recognizer
(engine/recognizer.py, the very code live sessions run) -> true and recognized phoneme ids
per 30 FPS frame.

Splits: train and val share voices and performers (val has its own sentences); test has
held-out voices (tts.HELD_OUT_VOICES, whose timbres no training voice uses), held-out
performers (styles.is_test_performer) and its own sentences.

Determinism: espeak-ng keeps pitch-flutter state from one utterance to the next inside the
library, so every shard is made in a fresh process (`maxtasksperchild=1`); a shard's bytes
then depend only on the seed, whatever the number of workers or the order shards run in.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing as mp
import os
import queue
import random
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.phonemes import PHONEME_ID, PHONEMES
from stylecast.training import prosody, styles, tts
from stylecast.training import sentences as sentence_bank
from stylecast.training.timeline import SAMPLE_RATE, Phone, Utterance, phone_ids_per_frame

log = logging.getLogger(__name__)

FORMAT = "stylecast-corpus"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
SPLIT_SHARE = {"train": 0.90, "val": 0.05, "test": 0.05}  # of the hours asked for
SENTENCE_SHARE = {"train": 0.90, "val": 0.05, "test": 0.05}  # of the distinct sentences
MANIFEST = "manifest.json"
# Planned seconds of an utterance, fitted on espeak-ng's output (residual 0.23 s per
# utterance, total within 1%): 0.0698 s per phone and 0.353 s per comma at 175 wpm, + 0.134.
_S_PER_PHONE, _S_PER_COMMA, _S_FIXED = 0.0698, 0.353, 0.134


@dataclass(frozen=True)
class CorpusConfig:
    """What a corpus is made from; saved in its manifest and checked on resume."""

    hours: float  # planned hours of audio over all splits (actual within a few %)
    seed: int = 0  # decides every sentence, voice, style and motion
    shard_size: int = 200  # utterances per shard file
    n_sentences: int = 3000  # distinct sentences drawn (training/sentences.py)

    def __post_init__(self) -> None:
        if not 0 < self.hours <= 10_000:
            raise InputError(f"hours must be in (0, 10000], got {self.hours!r}")
        if not 1 <= self.shard_size <= 100_000:
            raise InputError(f"shard size must be in 1..100000, got {self.shard_size!r}")
        if self.n_sentences < 30:
            raise InputError(f"need at least 30 sentences, got {self.n_sentences!r}")


@dataclass(frozen=True)
class UtteranceSpec:
    """Everything that decides one utterance."""

    index: int  # position in its split
    text: str
    voice: str  # tts.Voice.name
    style_id: int  # styles.style(style_id)
    seed: int  # the performer's seed


@dataclass(frozen=True)
class ShardSpec:
    name: str  # "train-00003": file name without .npz
    split: str
    utterances: tuple[UtteranceSpec, ...]


def _estimate_seconds(text: str, voice: tts.Voice) -> float:
    n_phones = sum(p != "SIL" for p in sentence_bank.sentence_phones(text))
    speed = 175.0 / voice.rate
    return (_S_PER_PHONE * n_phones + _S_PER_COMMA * text.count(",")) * speed + _S_FIXED


def split_definition() -> dict[str, dict[str, list]]:
    """Which voices and performers each split draws from."""
    train_perf = [p for p in range(styles.N_PERFORMERS) if not styles.is_test_performer(p)]
    test_perf = [p for p in range(styles.N_PERFORMERS) if styles.is_test_performer(p)]
    seen = {
        "voices": [v.name for v in tts.TRAIN_VOICES],
        "performers": train_perf,
    }
    unseen = {"voices": [v.name for v in tts.HELD_OUT_VOICES], "performers": test_perf}
    return {"train": seen, "val": seen, "test": unseen}


def plan(config: CorpusConfig) -> list[ShardSpec]:
    """The corpus's shards, decided by the config alone. Each split draws from its own
    random stream, so a split's first shards stay the same when only the hours change."""
    bank = sentence_bank.generate_sentences(config.n_sentences, config.seed)
    order = list(range(len(bank)))
    random.Random(f"{config.seed}/sentence-split").shuffle(order)
    n_test = max(1, round(SENTENCE_SHARE["test"] * len(bank)))
    n_val = max(1, round(SENTENCE_SHARE["val"] * len(bank)))
    by_split = {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }
    definition = split_definition()
    shards: list[ShardSpec] = []
    for split in SPLITS:
        rng = random.Random(f"{config.seed}/{split}")
        voices = [tts.voice(name) for name in definition[split]["voices"]]
        performers = definition[split]["performers"]
        budget = config.hours * 3600.0 * SPLIT_SHARE[split]
        specs: list[UtteranceSpec] = []
        planned = 0.0
        while planned < budget:
            text = bank[rng.choice(by_split[split])]
            v = rng.choice(voices)
            sid = styles.style_id_of(
                rng.choice(performers), rng.choice(styles.EMOTIONS), rng.choice(styles.INTENSITIES)
            )
            specs.append(UtteranceSpec(len(specs), text, v.name, sid, rng.getrandbits(31)))
            planned += _estimate_seconds(text, v)
        for k in range(0, len(specs), config.shard_size):
            chunk = tuple(specs[k : k + config.shard_size])
            shards.append(ShardSpec(f"{split}-{k // config.shard_size:05d}", split, chunk))
    return shards


# --- making one shard (in a worker process) -----------------------------------------------
class _Worker:
    """The per-process synthesizer, recognizer and performer."""

    def __init__(self) -> None:
        from stylecast.training.performer import perform

        self.tts = tts.Synthesizer.get()
        self.recognize = _recognizer()
        self.perform = perform

    def utterance(self, spec: UtteranceSpec) -> dict:
        utt = self.tts.synthesize(spec.text, spec.voice)
        n = utt.n_frames
        # the engine's pitch (what a live session hears), the performer's own loudness
        pitch = prosody.pitch_hz(utt.audio, utt.sample_rate, n)
        motion = self.perform(utt, styles.style(spec.style_id), spec.seed, pitch=pitch)
        assert motion.expr.shape == (n, 52) and motion.pose.shape == (n, 6)
        true = phone_ids_per_frame(utt.phones, n)
        return {
            "utt": utt,
            "true": true,
            "recognized": self.recognize(utt.audio, n),
            "expr": motion.expr,
            "pose": motion.pose,
        }


def _recognizer():
    """(audio 16 kHz, n_frames) -> (T,) recognized ids, as a live session gets them after a
    barge-in: engine/recognizer.py's streaming PhoneRecognizer at its default look-ahead,
    `reset()` before each utterance. A fresh recognizer per utterance (what
    `engine.audio.features_for_audio` builds) costs 0.15 s to load; reset() instead differs
    from it on about 1% of frames (pocketsphinx keeps some adaptation across utterances)."""
    from stylecast.engine.recognizer import PhoneRecognizer

    recognizer = PhoneRecognizer()

    def recognize(audio: np.ndarray, n_frames: int) -> np.ndarray:
        recognizer.reset()
        ids = np.concatenate([recognizer.push(audio), recognizer.flush(n_frames)])
        assert len(ids) == n_frames, (len(ids), n_frames)
        return ids

    return recognize


_WORKER: _Worker | None = None
_PROGRESS = None  # a worker's queue to the progress bar: one item per utterance made


def _init_worker(progress) -> None:
    global _PROGRESS
    _PROGRESS = progress


def _worker() -> _Worker:
    global _WORKER
    if _WORKER is None:
        _WORKER = _Worker()
    return _WORKER


def _offsets(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def shard_arrays(shard: ShardSpec) -> dict[str, np.ndarray]:
    """Synthesize SHARD's utterances and pack them into the arrays of its file."""
    w = _worker()
    rows = []
    for spec in shard.utterances:
        rows.append(w.utterance(spec))
        if _PROGRESS is not None:
            _PROGRESS.put(1)
    utts: list[Utterance] = [r["utt"] for r in rows]
    specs = shard.utterances
    style_list = [styles.style(s.style_id) for s in specs]
    phones = [p for u in utts for p in u.phones]
    audio = np.concatenate([u.audio for u in utts])
    return {
        "audio": np.round(audio * 32767.0).astype(np.int16),  # (S,) 16 kHz
        "audio_offsets": _offsets([len(u.audio) for u in utts]),  # (N+1,)
        "frame_offsets": _offsets([u.n_frames for u in utts]),  # (N+1,)
        "phonemes_true": np.concatenate([r["true"] for r in rows]).astype(np.uint8),  # (F,)
        "phonemes_recognized": np.concatenate([r["recognized"] for r in rows]).astype(np.uint8),
        "expr": np.concatenate([r["expr"] for r in rows]).astype(np.float16),  # (F, 52)
        "pose": np.concatenate([r["pose"] for r in rows]).astype(np.float32),  # (F, 6)
        "phone_offsets": _offsets([len(u.phones) for u in utts]),  # (N+1,)
        "phone_ids": np.array([PHONEME_ID[p.phone] for p in phones], np.uint8),  # (P,)
        "phone_start": np.array([p.start for p in phones], np.float64),  # (P,) s
        "phone_end": np.array([p.end for p in phones], np.float64),  # (P,) s
        "phone_stress": np.array([p.stress for p in phones], np.uint8),  # (P,)
        "phone_word_start": np.array([p.word_start for p in phones], np.bool_),  # (P,)
        "index": np.array([s.index for s in specs], np.int64),  # (N,) position in the split
        "style_id": np.array([s.style_id for s in specs], np.int32),
        "performer": np.array([s.performer_id for s in style_list], np.int32),
        "emotion": np.array([s.emotion for s in style_list]),  # (N,) unicode
        "intensity": np.array([s.intensity for s in style_list], np.int8),
        "voice": np.array([s.voice for s in specs]),  # (N,) unicode
        "text": np.array([s.text for s in specs]),  # (N,) unicode
        "seed": np.array([s.seed for s in specs], np.int64),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that np.load reads with allow_pickle=False, byte-identical for equal arrays
    (fixed zip timestamps, no compression), written atomically (temp file + rename)."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            assert arr.dtype != object, name
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue()
            )
    os.replace(tmp, path)


def _make_shard(args: tuple[ShardSpec, str]) -> tuple[str, int, int]:
    """Worker entry: make one shard file; returns (name, utterances, audio samples)."""
    shard, out_dir = args
    arrays = shard_arrays(shard)
    write_npz(Path(out_dir) / f"{shard.name}.npz", arrays)
    return shard.name, len(shard.utterances), len(arrays["audio"])


# --- the whole corpus -----------------------------------------------------------------------
def _manifest(config: CorpusConfig, shards: list[ShardSpec]) -> dict:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": asdict(config),
        "sample_rate": SAMPLE_RATE,
        "fps": 30,
        "phonemes": list(PHONEMES),
        "emotions": list(styles.EMOTIONS),
        "splits": split_definition(),
        "shards": [
            {"name": s.name, "split": s.split, "utterances": len(s.utterances)} for s in shards
        ],
    }


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{root} holds no corpus: no {MANIFEST}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path} is not a corpus manifest: {e}") from e
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise FormatError(
            f"{path}: format {manifest.get('format')!r} v{manifest.get('version')!r}, "
            f"expected {FORMAT!r} v{FORMAT_VERSION}"
        )
    return manifest


def audio_seconds(shard_path: Path) -> float:
    """Seconds of audio in a shard file (reads only its offsets)."""
    with np.load(shard_path, allow_pickle=False) as z:
        return float(z["audio_offsets"][-1]) / SAMPLE_RATE


def _is_complete(path: Path, n_utterances: int) -> bool:
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return len(z["style_id"]) == n_utterances
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return False


def synthesize(
    config: CorpusConfig, out_dir: Path, workers: int = 2, progress: bool = True
) -> dict:
    """Make the corpus in OUT_DIR, skipping complete shards; returns the manifest."""
    from tqdm import tqdm

    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = plan(config)
    manifest = _manifest(config, shards)
    if (out_dir / MANIFEST).exists():
        old = read_manifest(out_dir)
        if old["config"] != manifest["config"]:
            raise InputError(
                f"{out_dir} holds a corpus made with {old['config']}, not {manifest['config']}: "
                "use the same settings to resume, or another --out"
            )
    for stale in out_dir.glob("*.npz.tmp*"):
        stale.unlink()
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    todo = [s for s in shards if not _is_complete(out_dir / f"{s.name}.npz", len(s.utterances))]
    total = sum(len(s.utterances) for s in shards)
    done = total - sum(len(s.utterances) for s in todo)
    log.info("%d of %d shards to make (%d utterances)", len(todo), len(shards), total - done)
    bar = tqdm(total=total, initial=done, unit="utt", disable=not progress, smoothing=0.05)
    try:
        if todo:
            ctx = mp.get_context("spawn")
            # a fresh process per shard: espeak-ng's state then never crosses shards
            ticks = ctx.Queue()
            with ctx.Pool(
                min(workers, len(todo)), _init_worker, (ticks,), maxtasksperchild=1
            ) as pool:
                jobs = [(s, os.fspath(out_dir)) for s in todo]
                result = pool.map_async(_make_shard, jobs, chunksize=1)
                while not result.ready():
                    with contextlib.suppress(queue.Empty):
                        bar.update(ticks.get(timeout=0.25))
                result.get()  # raises a worker's exception here
                bar.update(total - bar.n)
    finally:
        bar.close()
    return manifest


# --- reading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusUtterance:
    """One utterance as stored: audio, true phones, recognized phones, motion, style."""

    split: str
    index: int  # position in its split
    audio: np.ndarray  # (S,) float32 16 kHz
    phones: tuple[Phone, ...]  # the true timed phones (training/timeline.py)
    phonemes_true: np.ndarray  # (T,) int64 ids at each frame's centre
    phonemes_recognized: np.ndarray  # (T,) int64 ids from the streaming recognizer
    expr: np.ndarray  # (T, 52) float32
    pose: np.ndarray  # (T, 6) float32
    style_id: int
    performer: int
    emotion: str
    intensity: int
    voice: str
    text: str

    @property
    def n_frames(self) -> int:
        return len(self.expr)

    def utterance(self) -> Utterance:
        return Utterance(self.audio, SAMPLE_RATE, self.phones, self.text, self.voice)


def read_shard(path: Path, split: str = "") -> list[CorpusUtterance]:
    """All utterances of one shard file."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise FormatError(f"{path} is not a corpus shard: {e}") from e
    with z:
        a = {k: z[k] for k in z.files}
    ao, fo, po = a["audio_offsets"], a["frame_offsets"], a["phone_offsets"]
    out = []
    for i in range(len(a["style_id"])):
        phones = tuple(
            Phone(PHONEMES[a["phone_ids"][k]], float(a["phone_start"][k]),
                  float(a["phone_end"][k]), int(a["phone_stress"][k]),
                  bool(a["phone_word_start"][k]))
            for k in range(po[i], po[i + 1])
        )  # fmt: skip
        f = slice(fo[i], fo[i + 1])
        out.append(
            CorpusUtterance(
                split=split,
                index=int(a["index"][i]),
                audio=a["audio"][ao[i] : ao[i + 1]].astype(np.float32) / 32767.0,
                phones=phones,
                phonemes_true=a["phonemes_true"][f].astype(np.int64),
                phonemes_recognized=a["phonemes_recognized"][f].astype(np.int64),
                expr=a["expr"][f].astype(np.float32),
                pose=a["pose"][f],
                style_id=int(a["style_id"][i]),
                performer=int(a["performer"][i]),
                emotion=str(a["emotion"][i]),
                intensity=int(a["intensity"][i]),
                voice=str(a["voice"][i]),
                text=str(a["text"][i]),
            )
        )
    return out


class CorpusReader:
    """Reads a corpus lazily, one shard in memory at a time.

    reader = CorpusReader("data/corpus", "train")
    for utt in reader: ...            # in order
    for utt in reader.iter(shuffle_seed=3): ...   # shards and utterances shuffled
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None) -> None:
        if split is not None and split not in SPLITS:
            raise InputError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.split = split
        self.shards = [s for s in self.manifest["shards"] if split is None or s["split"] == split]
        missing = [s["name"] for s in self.shards if not (self.root / f"{s['name']}.npz").exists()]
        if missing:
            raise InputError(
                f"{self.root} is incomplete: {len(missing)} shard(s) missing, e.g. "
                f"{missing[0]}.npz; run `stylecast data synth` with the same settings to finish"
            )

    def __len__(self) -> int:
        return sum(s["utterances"] for s in self.shards)

    def __iter__(self) -> Iterator[CorpusUtterance]:
        return self.iter()

    def iter(self, shuffle_seed: int | None = None) -> Iterator[CorpusUtterance]:
        shards = list(self.shards)
        rng = random.Random(shuffle_seed)
        if shuffle_seed is not None:
            rng.shuffle(shards)
        for s in shards:
            utts = read_shard(self.root / f"{s['name']}.npz", s["split"])
            if shuffle_seed is not None:
                rng.shuffle(utts)
            yield from utts
