"""StyleTalk: shapes, the lower/upper split by name, style masking, and whole-sequence
forward == frame-by-frame step."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.engine.face import ARKIT_NAMES, LOWER_FACE_NAMES  # noqa: E402
from stylecast.models.config import MotionSpec, styletalk_config  # noqa: E402
from stylecast.models.layers import (  # noqa: E402
    pad_sequence_ends,
    padding_frames,
    sliding_windows,
)
from stylecast.models.sampling import stream  # noqa: E402
from stylecast.models.styletalk import StyleTalk  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def features(frontend: str, b: int, t: int) -> torch.Tensor:
    if frontend == "phoneme":
        return torch.randint(0, 41, (b, t))
    return torch.randn(b, t, 16, 80)


def make(frontend: str = "phoneme", **changes) -> StyleTalk:
    torch.manual_seed(0)
    cfg = dataclasses.replace(styletalk_config("tiny", frontend), **changes)
    return StyleTalk(cfg).eval()


def style_code(model: StyleTalk, b: int = 2) -> torch.Tensor:
    clip = torch.rand(b, 24, model.cfg.motion.n_motion)
    valid = torch.ones(b, 24, dtype=torch.bool)
    with torch.no_grad():
        return model.encode_style(clip, valid)


@pytest.mark.parametrize("frontend", ["phoneme", "mel"])
def test_forward_shapes_and_range(frontend):
    model = make(frontend)
    style = style_code(model)
    with torch.no_grad():
        out = model(features(frontend, 2, 9), style)
    assert out.expr.shape == (2, 9, 52) and out.pose.shape == (2, 9, 6)
    assert out.expr.dtype == torch.float32
    assert ((out.expr >= 0) & (out.expr <= 1)).all()  # sigmoid: ARKit weights


@pytest.mark.parametrize("frontend", ["phoneme", "mel"])
def test_forward_equals_step_by_step(frontend):
    model = make(frontend)
    style = style_code(model)
    x = features(frontend, 2, 11)
    with torch.no_grad():
        whole = model(x, style)
    streamed = stream(model, x, style)
    assert (whole.expr - streamed.expr).abs().max() < 1e-5
    assert (whole.pose - streamed.pose).abs().max() < 1e-5


def test_step_needs_w_frames_of_lookahead_and_keeps_fixed_shapes():
    model = make()
    w = model.cfg.lookahead_frames
    assert w == model.cfg.content.window == 2
    state = model.init_state(3)
    assert state.window.shape == (3, 2 * w) and state.window.dtype == torch.long
    with torch.no_grad():
        for _ in range(4):
            out = model.step(torch.randint(0, 41, (3,)), state)
            assert out.state.window.shape == state.window.shape
            assert out.expr.shape == (3, 52) and out.pose.shape == (3, 6)
            state = out.state
    # Frame t's output depends on input t + w but not on t + w + 1.
    x = torch.randint(0, 41, (1, 8))
    style = style_code(model, 1)
    with torch.no_grad():
        base = model(x, style).expr[0, 3]
        x2 = x.clone()
        x2[0, 3 + w + 1] = (x[0, 3 + w + 1] + 1) % 41
        assert torch.allclose(model(x2, style).expr[0, 3], base)
        x2[0, 3 + w] = (x[0, 3 + w] + 1) % 41
        assert not torch.allclose(model(x2, style).expr[0, 3], base)


def test_lower_decoder_writes_exactly_the_lower_face_names():
    model = make()
    style = style_code(model)
    x = features("phoneme", 2, 5)
    with torch.no_grad():
        before = model(x, style).expr
        model.lower_head.bias.add_(1.0)
        after = model(x, style).expr
    changed = {ARKIT_NAMES[i] for i in range(52) if (after - before)[..., i].abs().max() > 0}
    assert changed == set(LOWER_FACE_NAMES)


def test_style_code_ignores_padding_and_changes_output():
    model = make()
    clip = torch.rand(2, 20, 58)
    valid = torch.ones(2, 20, dtype=torch.bool)
    valid[1, 12:] = False
    with torch.no_grad():
        code = model.encode_style(clip, valid)
        clip2 = clip.clone()
        clip2[1, 12:] = 5.0
        assert torch.allclose(model.encode_style(clip2, valid), code, atol=1e-6)
        assert code.shape == (2, model.cfg.d_model)
        x = features("phoneme", 1, 6).expand(2, 6)
        out = model(x, code).expr
    assert (out[0] - out[1]).abs().max() > 1e-4  # two styles, two motions


def test_dimensions_come_from_config_3dmm():
    names = tuple(f"exp{i:02d}" for i in range(64))
    motion = MotionSpec(expr_names=names, lower_names=names[:13], expr_activation="none")
    model = make(motion=motion)
    clip = torch.randn(1, 16, 70)
    with torch.no_grad():
        style = model.encode_style(clip, torch.ones(1, 16, dtype=torch.bool))
        out = model(features("phoneme", 1, 4), style)
    assert out.expr.shape == (1, 4, 64) and out.pose.shape == (1, 4, 6)


def test_padding_frames_match_init_state():
    model = make("mel")
    state = model.init_state(2)
    assert torch.equal(state.window, padding_frames(model.cfg.content, 2, 4))


@pytest.mark.parametrize("frontend", ["phoneme", "mel"])
def test_pose_smoothing_is_the_same_filter_in_forward_and_step(frontend):
    model = make(frontend, pose_smoothing=0.8)
    style = style_code(model)
    x = features(frontend, 2, 12)
    with torch.no_grad():
        whole = model(x, style)
        raw = model._decode(
            sliding_windows(
                model.content.frame(pad_sequence_ends(x, model.cfg.content)),
                model.cfg.content.window_frames,
            ),
            style,
        ).pose
    streamed = stream(model, x, style)
    assert (whole.pose - streamed.pose).abs().max() < 1e-5
    assert (whole.expr - streamed.expr).abs().max() < 1e-5
    # It is y_t = 0.8 y_(t-1) + 0.2 x_t from y_0 = x_0, so it starts on the raw pose and
    # then moves less from frame to frame than the raw pose does.
    assert torch.allclose(whole.pose[:, 0], raw[:, 0], atol=1e-6)
    assert torch.allclose(whole.pose[:, 3], 0.8 * whole.pose[:, 2] + 0.2 * raw[:, 3], atol=1e-6)
    assert whole.pose.diff(dim=1).abs().mean() < raw.diff(dim=1).abs().mean()


def test_pose_smoothing_off_leaves_the_raw_pose_and_bad_values_are_refused():
    model = make("phoneme", pose_smoothing=0.0)
    x = features("phoneme", 1, 6)
    style = style_code(model, 1)
    with torch.no_grad():
        a = model(x, style).pose
        model.cfg = dataclasses.replace(model.cfg, pose_smoothing=0.5)
        b = model(x, style).pose
    assert not torch.allclose(a, b)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="pose_smoothing"):
            dataclasses.replace(model.cfg, pose_smoothing=bad)


def test_pose_smoothing_state_flows_through_the_onnx_step(tmp_path):
    """The exported step carries the filter (pose_smooth, pose_lead) like any state: fed
    from the manifest's fills, it gives the smoothed pose of the whole-sequence forward."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from stylecast.cli import main
    from stylecast.engine.onnx_manifest import load_manifest
    from stylecast.models.checkpoint import save_model

    model = make("phoneme", pose_smoothing=0.8)
    save_model(tmp_path / "ckpt", model, model.cfg, {"note": "random init"})
    assert main(["export", str(tmp_path / "ckpt"), "-o", str(tmp_path / "onnx")]) == 0
    manifest = load_manifest(tmp_path / "onnx")
    assert {"pose_smooth", "pose_lead"} <= {s.name for s in manifest.state}
    session = ort.InferenceSession(str(tmp_path / "onnx" / "step.onnx"),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    style = style_code(model, 2)
    x = features("phoneme", 2, 10)
    w = model.cfg.lookahead_frames
    inputs = torch.cat([x, torch.zeros(2, w, dtype=x.dtype)], dim=1)  # id 0 pads the end
    state = {s.input: np.full((2, *s.shape), s.fill, dtype=s.dtype) for s in manifest.state}
    poses = []
    for t in range(inputs.shape[1]):
        feeds = {"features": inputs[:, t].numpy(), "style": style.numpy(), **state}
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                       strict=True))  # fmt: skip
        state = {s.input: got[s.output] for s in manifest.state}
        if t >= w:
            poses.append(got["pose"])
    with torch.no_grad():
        whole = model(x, style).pose.numpy()
    assert np.abs(np.stack(poses, axis=1) - whole).max() < 1e-4
