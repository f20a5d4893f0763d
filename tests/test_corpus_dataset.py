"""training/corpus_dataset.py: the corpus as the trainers' MotionDataset."""

import numpy as np
import pytest

from stylecast.engine.audio import features_for_audio
from stylecast.engine.errors import FormatError, InputError
from stylecast.training import styles
from stylecast.training.corpus import CorpusConfig, CorpusReader, synthesize, write_npz
from stylecast.training.corpus_dataset import CorpusDataset, mel_windows, open_npz_mmap


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    synthesize(CorpusConfig(hours=0.006, seed=11, shard_size=3), out, workers=2, progress=False)
    return out


def test_dataset_matches_the_reader_and_the_live_front_end(root):
    from stylecast.training.synthetic import MotionDataset

    ds = CorpusDataset(root, "train")
    assert isinstance(ds, MotionDataset) and ds.n_styles == styles.N_STYLES
    stored = list(CorpusReader(root, "train"))
    assert len(ds) == len(stored) >= 4
    assert np.array_equal(ds.styles(), [u.style_id for u in stored])
    assert np.array_equal(ds.lengths(), [u.n_frames for u in stored])
    for k in (0, len(ds) - 1, -1):
        u, ref = ds[k], stored[k]
        assert np.array_equal(u.phonemes, ref.phonemes_recognized)
        assert np.array_equal(u.expr, ref.expr) and np.array_equal(u.pose, ref.pose)
        assert u.style == ref.style_id
        live = features_for_audio(ref.audio)
        assert u.mel.shape == live.mel.shape == (ref.n_frames, 16, 80)
        np.testing.assert_allclose(u.mel, live.mel, atol=1e-5)
    true = CorpusDataset(root, "train", phonemes="true")
    assert np.array_equal(true[0].phonemes, stored[0].phonemes_true)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_mel_windows_of_short_and_silent_audio():
    assert mel_windows(np.zeros(1, np.float32)).shape == (1, 16, 80)
    silent = mel_windows(np.zeros(16000, np.float32))
    assert silent.shape == (30, 16, 80) and np.all(silent == -4.0)


def test_memory_mapped_shards_refuse_what_they_cannot_map(tmp_path, root):
    arrays = open_npz_mmap(next(root.glob("train-*.npz")))
    assert isinstance(arrays["audio"], np.memmap) and arrays["text"].dtype.kind == "U"
    compressed = tmp_path / "c.npz"
    np.savez_compressed(compressed, a=np.arange(10))
    with pytest.raises(FormatError, match="compressed"):
        open_npz_mmap(compressed)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        open_npz_mmap(tmp_path / "junk.npz")
    write_npz(tmp_path / "ok.npz", {"x": np.arange(6, dtype=np.int16).reshape(2, 3)})
    assert np.array_equal(open_npz_mmap(tmp_path / "ok.npz")["x"], [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(InputError, match="phonemes"):
        CorpusDataset(root, "train", phonemes="guessed")
