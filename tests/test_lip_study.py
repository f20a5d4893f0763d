"""training/lip_study.py: the lip numbers of the paired runs, on made-up motion."""

from types import SimpleNamespace

import numpy as np
import pytest

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import INDEX
from stylecast.training.lip_study import face_summary, lip_summary
from stylecast.training.timeline import Phone


@pytest.fixture(scope="module")
def rig():
    return load_avatar("default").rig


def _speech(frames: int = 60) -> tuple[np.ndarray, tuple]:
    """Open jaw except at the /m/ (0.4-0.5 s = frames 12-14), where the lips shut."""
    expr = np.zeros((frames, 52), np.float32)
    expr[:, INDEX["jawOpen"]] = 0.3
    expr[12:15, INDEX["jawOpen"]] = 0.0
    phones = (Phone("SIL", 0.0, 0.4), Phone("M", 0.4, 0.5), Phone("AA", 0.5, 2.0))
    return expr, phones


def test_truth_scores_itself_closed_with_zero_distance(rig):
    expr, phones = _speech()
    s = lip_summary([expr], [expr], [phones], rig)
    assert s.bilabials == 1 and s.closed == 1.0 and s.m_lvd_mm == 0.0
    assert s.frames_closed == pytest.approx(3 / 60)
    assert s.median_min_gap_mm == pytest.approx(2.27, abs=0.1)  # the rig's rest gap


def test_a_mouth_that_never_shuts_scores_no_closure(rig):
    truth, phones = _speech()
    averaged = np.repeat(truth.mean(0, keepdims=True), len(truth), axis=0)  # the mean mouth
    s = lip_summary([averaged], [truth], [phones], rig)
    assert s.closed == 0.0 and s.frames_closed == 0.0
    assert s.m_lvd_mm > 0.1 and s.median_min_gap_mm > 5.0
    late = np.roll(truth, 6, axis=0)  # the closure 200 ms late: outside the +-1 frame window
    assert lip_summary([late], [truth], [phones], rig).closed == 0.0


def _clips(n: int = 12, frames: int = 40):
    """Made-up utterances of two emotions that differ in the brows; the gaze wanders a
    little around the camera."""
    rng = np.random.default_rng(0)
    clips = []
    for k in range(n):
        expr = np.zeros((frames, 52), np.float32)
        expr[:, INDEX["browInnerUp"]] = 0.6 if k % 2 else 0.1
        expr[:, INDEX["eyeLookOutLeft"]] = rng.uniform(0, 0.2, frames)
        loud = rng.uniform(-50, -10, frames)
        clips.append(SimpleNamespace(expr=expr, pose=np.zeros((frames, 6)),
                                     emotion=k % 2, index=k,
                                     prosody=np.stack([loud, loud, loud], 1)))  # fmt: skip
    return clips


def test_face_summary_counts_held_gaze_and_scores_the_emotion():
    clips = _clips()
    truth = face_summary([c.expr for c in clips], [c.pose for c in clips], clips)
    assert truth.gaze_aside == 0.0 and truth.eye_look_error == 0.0
    assert truth.emotion_acc == 1.0 and truth.emotion_acc_expr == 1.0
    held = [c.expr.copy() for c in clips]
    for e in held[:3]:  # eyes held to one side for the whole clip
        e[:, INDEX["eyeLookInLeft"]] = 0.8
    s = face_summary(held, [c.pose for c in clips], clips)
    assert s.gaze_aside == pytest.approx(3 / 12)
    assert s.eye_look_error == pytest.approx(3 / 12 * 0.8 / 8, rel=1e-5)
    swapped = [clips[k + 1 if k % 2 == 0 else k - 1].expr for k in range(len(clips))]
    assert face_summary(swapped, [c.pose for c in clips], clips).emotion_acc_expr == 0.0


def test_face_summary_measures_the_head():
    clips = _clips()
    still = [np.zeros_like(c.pose) for c in clips]
    s = face_summary([c.expr for c in clips], still, clips)
    assert s.pose_jerk == 0.0 and np.isnan(s.energy_corr)  # a still head has no speed
    moving = []
    for c in clips:  # the head turns faster when the speech is louder
        speed = (c.prosody[:, 0] + 60) * 1e-4
        p = np.zeros_like(c.pose)
        p[:, 1] = np.cumsum(speed)
        moving.append(p)
    assert face_summary([c.expr for c in clips], moving, clips).energy_corr > 0.9


def test_expert_mix_is_uniform_at_a_high_temperature_and_selective_at_a_low_one():
    torch = pytest.importorskip("torch")
    import dataclasses

    from stylecast.models.config import styletalk_config
    from stylecast.models.styletalk import StyleTalk
    from stylecast.training.lip_study import expert_mix

    torch.manual_seed(0)
    codes = 5 * torch.randn(16, styletalk_config("tiny").d_model)
    mixes = {}
    for t in (30.0, 0.05):
        cfg = dataclasses.replace(styletalk_config("tiny"), expert_temperature=t)
        torch.manual_seed(0)
        mixes[t] = expert_mix(StyleTalk(cfg), codes)
    k = styletalk_config("tiny").n_experts
    assert mixes[30.0]["expert_top"] == pytest.approx(1 / k, abs=0.02)
    assert mixes[30.0]["expert_entropy"] > 0.99
    assert mixes[0.05]["expert_top"] > 0.6 and mixes[0.05]["expert_entropy"] < 0.5
    assert mixes[0.05]["expert_top_std"] > mixes[30.0]["expert_top_std"]
