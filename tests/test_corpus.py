"""training/corpus.py and `stylecast data`: plan, synthesize, resume, read back."""

import filecmp
import json
import os

import numpy as np
import pytest

from stylecast.cli import EXIT_INPUT, main
from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.face import LOWER_FACE_MASK
from stylecast.training import corpus, styles, tts
from stylecast.training.corpus import CorpusConfig, CorpusReader, plan, synthesize
from stylecast.training.performer import perform
from stylecast.training.prosody import frame_prosody
from stylecast.training.timeline import SAMPLE_RATE, phone_ids_per_frame

TINY = CorpusConfig(hours=0.012, seed=5, shard_size=4)  # ~43 s: 3 train shards, 1 val, 1 test


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    synthesize(TINY, out, workers=2, progress=False)
    return out


def test_plan_is_deterministic_and_its_splits_are_disjoint():
    config = CorpusConfig(hours=1.0, seed=3)
    shards = plan(config)
    assert shards == plan(config)
    assert shards != plan(CorpusConfig(hours=1.0, seed=4))
    by = {s: [u for sh in shards if sh.split == s for u in sh.utterances] for s in corpus.SPLITS}
    voices = {s: {u.voice for u in us} for s, us in by.items()}
    perf = {s: {styles.style(u.style_id).performer_id for u in us} for s, us in by.items()}
    texts = {s: {u.text for u in us} for s, us in by.items()}
    assert voices["test"].isdisjoint(voices["train"] | voices["val"])
    assert perf["test"].isdisjoint(perf["train"] | perf["val"])
    assert all(styles.is_test_performer(p) for p in perf["test"])
    assert {tts.voice(v).variant for v in voices["test"]}.isdisjoint(
        tts.voice(v).variant for v in voices["train"]
    )
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert texts[a].isdisjoint(texts[b])
    planned = sum(
        corpus._estimate_seconds(u.text, tts.voice(u.voice)) for us in by.values() for u in us
    )
    assert 3600 <= planned < 3600 + 3 * 10  # within three utterances of the hour asked
    assert len(by["train"]) > 10 * len(by["test"]) > 0
    # a split's first shard does not change with the hours
    assert plan(CorpusConfig(hours=2.0, seed=3))[0] == shards[0]


def test_shards_hold_consistent_arrays_without_pickle(made):
    manifest = json.loads((made / "manifest.json").read_text())
    assert [s["split"] for s in manifest["shards"]].count("test") >= 1
    for entry in manifest["shards"]:
        with np.load(made / f"{entry['name']}.npz", allow_pickle=False) as z:
            n = len(z["style_id"])
            assert n == entry["utterances"]
            fo, ao = z["frame_offsets"], z["audio_offsets"]
            assert fo[-1] == len(z["expr"]) == len(z["pose"]) == len(z["phonemes_true"])
            assert ao[-1] == len(z["audio"]) and z["audio"].dtype == np.int16
            frames = np.diff(fo)
            assert np.array_equal(frames, np.ceil(np.diff(ao) * 30 / SAMPLE_RATE).astype(int))
            assert z["expr"].shape[1] == 52 and z["pose"].shape[1] == 6
            assert z["expr"].dtype == np.float16 and 0 <= z["expr"].min() <= z["expr"].max() <= 1
            for key in ("emotion", "voice", "text"):
                assert z[key].dtype.kind == "U" and len(z[key]) == n


def test_same_seed_gives_the_same_bytes_whatever_the_workers(made, tmp_path):
    synthesize(TINY, tmp_path, workers=1, progress=False)
    names = sorted(p.name for p in made.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(made, tmp_path, names, shallow=False)
    assert not mismatch and not errors and len(match) == len(names)


def test_resume_keeps_complete_shards_and_remakes_the_rest(made, tmp_path):
    for p in made.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    shards = sorted(tmp_path.glob("*.npz"))
    removed, truncated, kept = shards[0], shards[1], shards[2]
    original = {p.name: p.read_bytes() for p in shards}
    removed.unlink()
    truncated.write_bytes(original[truncated.name][:1000])
    (tmp_path / "val-00000.npz.tmp999").write_bytes(b"half a file")
    os.utime(kept, (1, 1))  # a kept shard is not rewritten
    synthesize(TINY, tmp_path, workers=2, progress=False)
    assert kept.stat().st_mtime == 1
    assert {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.npz"))} == original
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(InputError, match="same settings"):
        synthesize(CorpusConfig(hours=0.012, seed=6, shard_size=4), tmp_path, progress=False)


def test_reader_round_trip(made):
    manifest = json.loads((made / "manifest.json").read_text())
    everything = list(CorpusReader(made))
    assert len(everything) == sum(s["utterances"] for s in manifest["shards"])
    definition = corpus.split_definition()
    agree = []
    for split in corpus.SPLITS:
        reader = CorpusReader(made, split)
        utts = list(reader)
        assert len(utts) == len(reader) > 0
        assert sorted(u.index for u in utts) == list(range(len(utts)))
        assert sorted(u.index for u in reader.iter(shuffle_seed=1)) == list(range(len(utts)))
        for u in utts:
            assert u.split == split
            assert u.voice in definition[split]["voices"]
            assert u.performer in definition[split]["performers"]
            s = styles.style(u.style_id)
            assert (s.performer_id, s.emotion, s.intensity) == (u.performer, u.emotion, u.intensity)
            utt = u.utterance()
            assert utt.n_frames == u.n_frames == len(u.phonemes_true) == len(u.pose)
            assert np.array_equal(phone_ids_per_frame(u.phones, u.n_frames), u.phonemes_true)
            assert u.phones[-1].end == pytest.approx(utt.duration)
            assert np.abs(u.audio).max() > 0.05
            agree.append(np.mean(u.phonemes_true == u.phonemes_recognized))
    assert np.mean(agree) > 0.3  # recognized ids line up with the true ones in time


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(InputError, match="hours"):
        CorpusConfig(hours=0)
    with pytest.raises(InputError, match="no corpus"):
        CorpusReader(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(FormatError):
        CorpusReader(tmp_path)
    with pytest.raises(InputError, match="split"):
        CorpusReader(tmp_path, "dev")
    assert main(["data", "synth", "--hours", "-1", "--out", str(tmp_path / "x")]) == EXIT_INPUT
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path)])  # --hours is required


def test_the_performer_hears_the_engine_pitch():
    """The corpus drives the performer with the engine's pitch (engine/prosody.py on the
    live front end's windows); pitch moves only the brows, the head and what follows them
    (gaze, and blinks through the shared random stream), never the mouth."""
    spec = plan(TINY)[0].utterances[0]
    made = corpus._Worker().utterance(spec)
    utt, style = made["utt"], styles.style(spec.style_id)
    engine_pitch = frame_prosody(utt.audio, utt.n_frames)[:, 2]
    assert (engine_pitch > 0).mean() > 0.3  # speech: mostly voiced
    want = perform(utt, style, spec.seed, pitch=engine_pitch)
    assert np.array_equal(made["expr"], want.expr) and np.array_equal(made["pose"], want.pose)
    flat = perform(utt, style, spec.seed, pitch=np.zeros_like(engine_pitch))
    assert np.array_equal(flat.expr[:, LOWER_FACE_MASK], want.expr[:, LOWER_FACE_MASK])
    assert not np.allclose(flat.pose, want.pose, atol=1e-4)
