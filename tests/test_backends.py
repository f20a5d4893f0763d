"""Choosing a motion backend by spec (engine/backends.py) and the style side of the
MotionModel contract: extract_style, library_code, reads (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.audio import AudioFeatures
from stylecast.engine.backends import load_backend
from stylecast.engine.baseline import BaselineMotion
from stylecast.engine.errors import BackendError, FormatError, InputError
from stylecast.engine.motion import scripted_motion
from stylecast.engine.motion_backend import MotionModel, motion_for_features, style_clip
from stylecast.paths import assets_dir


@pytest.fixture(scope="module")
def saas():
    folder = assets_dir() / "onnx" / "saas"
    if not (folder / "manifest.json").is_file():
        pytest.skip("no shipped export in assets/onnx/saas")
    return load_backend(f"onnx-cpu:{folder}")


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ("magic", InputError, "unknown motion backend 'magic'; use one of baseline, onnx-cpu"),
        ("baseline:assets/onnx/saas", InputError, "the baseline backend takes no folder"),
        ("onnx-cpu:/no/such/export", InputError, "/no/such/export is not a folder"),
    ],
)
def test_bad_specs_say_what_is_accepted(spec, error, words):
    with pytest.raises(error, match=words):
        load_backend(spec)


def test_a_folder_must_be_an_export(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt is not a folder"):
        load_backend(f"onnx-cpu:{tmp_path / 'notes.txt'}")
    with pytest.raises(FormatError, match=r"no manifest\.json"):
        load_backend(f"onnx-cpu:{tmp_path}")


@pytest.mark.parametrize(
    "mix", [{"sad": 1.0}, {"happy": 0.5, "surprised": 0.5}, {"neutral": 0.7, "angry": 0.3}]
)
def test_the_baseline_projects_a_clip_on_its_presets(mix):
    """Round trip: the baseline speaking in a mix of presets -> extract_style -> that mix."""
    model = load_backend("baseline")
    assert isinstance(model, BaselineMotion) and model.has_style_encoder
    rng = np.random.default_rng(0)
    frames = 150
    features = AudioFeatures(  # loud speech-like input: the mouth moves on top of the style
        mel=np.zeros((frames, 16, 80), np.float32),
        phonemes=rng.integers(0, 41, frames),
        prosody=np.stack([rng.uniform(-40, -15, frames), np.ones(frames), np.full(frames, 150)], 1),
    )
    code = sum(model.style_code(k) * np.float32(w) for k, w in mix.items())
    expr, pose = motion_for_features(model, features, code)
    got = model.extract_style(expr, pose)
    assert got.shape == (model.style_dim,) and np.isclose(got.sum(), 1.0) and (got >= 0).all()
    assert np.abs(got - code).max() < 0.05, (mix, got)
    assert model.reads == {"phonemes", "prosody", "noise"}  # it never looks at the mel


def test_a_model_without_a_style_encoder_says_so():
    class Frozen(BaselineMotion):
        name = "frozen"
        has_style_encoder = False
        extract_style = MotionModel.extract_style

    motion = scripted_motion(2.0)
    with pytest.raises(BackendError, match="frozen motion model has no style encoder"):
        Frozen().extract_style(motion.expr, motion.pose)


def test_library_code_takes_only_codes_made_for_this_model(saas):
    baseline = BaselineMotion()
    happy = [0.0, 1.0, 0.0, 0.0, 0.0]
    assert np.array_equal(baseline.library_code({"codes": {"baseline": happy}}), happy)
    for record in (
        {},
        {"code": happy},  # a bare code says nothing of whose it is
        {"codes": {"saas": happy}},
        {"codes": {"baseline": happy[:4]}},  # wrong length
        {"codes": {"baseline": [np.nan, 1, 0, 0, 0]}},
        {"codes": {"baseline": "happy"}},
        {"codes": ["baseline"]},
    ):
        assert baseline.library_code(record) is None, record
    code = np.linspace(-1, 1, saas.style_dim).tolist()
    mine = {"codes": {"saas": code}, "models": {"saas": saas.weights_id}}
    assert np.allclose(saas.library_code(mine), code)
    assert saas.library_code(mine | {"models": {"saas": "0" * 12}}) is None  # other weights
    assert saas.library_code({"codes": {"saas": code}}) is None  # weights unknown
    assert saas.codes_key == "saas" and len(saas.weights_id) == 12


def test_long_clips_are_encoded_as_the_mean_of_their_chunks(saas):
    """As `stylecast style add` does: chunks of style_frames, a short tail dropped."""
    n = saas.manifest.style_frames
    motion = scripted_motion((n + 60) / 30)
    expr, pose = motion.expr, motion.pose
    head = saas.extract_style(expr[:n], pose[:n])
    tail = saas.extract_style(expr[n:], pose[n:])
    assert np.allclose(saas.extract_style(expr, pose), (head + tail) / 2, atol=1e-5)
    short_tail = n + 20  # < 32 frames after the first chunk: dropped
    assert np.allclose(saas.extract_style(expr[:short_tail], pose[:short_tail]), head, atol=1e-6)
    assert not np.allclose(head, tail, atol=1e-3)  # the chunks really differ


def test_style_clips_are_checked():
    motion = scripted_motion(1.0)
    assert style_clip(motion.expr, motion.pose).shape == (30, 58)
    with pytest.raises(InputError, match=r"got \(30, 52\) and \(29, 6\)"):
        style_clip(motion.expr, motion.pose[:29])
    with pytest.raises(InputError, match="T >= 1"):
        style_clip(motion.expr[:0], motion.pose[:0])
    with pytest.raises(InputError, match="58 values a frame"):
        style_clip(motion.expr[:, :50], motion.pose)
    bad = motion.expr.copy()
    bad[3, 3] = np.inf
    with pytest.raises(InputError, match="finite"):
        style_clip(bad, motion.pose)
