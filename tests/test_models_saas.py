"""SAAS: style extraction, HyperStyle conditioning, pose sampling, whole-sequence vs
frame-by-frame parity, and the ONNX export of the step."""

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from stylecast.models.config import saas_config  # noqa: E402
from stylecast.models.saas import SAAS  # noqa: E402
from stylecast.models.sampling import (  # noqa: E402
    frame_uniforms,
    generate_saas,
    pose_token_count,
    stream,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def features(frontend: str, b: int, t: int) -> torch.Tensor:
    if frontend == "phoneme":
        return torch.randint(0, 41, (b, t))
    return torch.randn(b, t, 16, 80)


def make(frontend: str = "mel") -> SAAS:
    """A tiny SAAS whose HyperStyle offsets are non-zero (as after training)."""
    torch.manual_seed(0)
    model = SAAS(saas_config("tiny", frontend)).eval()
    torch.nn.init.normal_(model.expression.hyper.head_b.weight, std=0.3)
    return model


def style_codes(model: SAAS, b: int = 2) -> torch.Tensor:
    """Random style codes (an untrained extractor quantises every clip to the same codes)."""
    return torch.randn(b, model.cfg.style_dim, generator=torch.Generator().manual_seed(b))


def test_style_extraction_shapes_tokens_and_padding():
    model = make()
    s = model.cfg.style
    clip = torch.rand(2, 40, 58)
    valid = torch.ones(2, 40, dtype=torch.bool)
    valid[1, 20:] = False
    with torch.no_grad():
        ex = model.extract_style(clip, valid)
        clip2 = clip.clone()
        clip2[1, 20:] = 3.0
        ex2 = model.extract_style(clip2, valid)
    windows = 3  # 40 frames -> 3 windows of 16
    assert ex.indices.shape == (2, windows * s.tokens_per_window)
    assert ex.token_valid[1].sum() == 20 // s.frames_per_token
    assert ex.code.shape == (2, s.d_model) and ex.logits.shape == (2, s.n_styles)
    assert ex.recon.shape == (2, windows * s.window_frames, 58)
    assert torch.allclose(ex2.code[1], ex.code[1], atol=1e-6)  # padding is ignored
    codes = model.style_extractor.vq.lookup(ex.indices)
    assert torch.equal(model.style_extractor.vq.nearest(codes), ex.indices)


def test_default_config_compresses_32_frames_to_4_tokens():
    s = saas_config().style
    assert (s.window_frames, s.tokens_per_window, s.codebook_size) == (32, 4, 500)
    p = saas_config().pose
    assert (p.codebook_size, p.d_code, p.frames_per_token) == (200, 256, 8)


@pytest.mark.parametrize("frontend", ["mel", "phoneme"])
def test_generate_equals_step_by_step(frontend):
    model = make(frontend)
    style = style_codes(model)
    frames = 10
    x = features(frontend, 2, frames)
    fpt = model.cfg.pose.frames_per_token
    u = torch.rand(2, pose_token_count(frames, fpt), generator=torch.Generator().manual_seed(3))
    whole = generate_saas(model, x, style, u)
    streamed = stream(model, x, style, frame_uniforms(u, frames, fpt))
    assert whole.expr.shape == (2, frames, 52) and whole.pose.shape == (2, frames, 6)
    assert (whole.expr - streamed.expr).abs().max() < 1e-5
    assert (whole.pose - streamed.pose).abs().max() < 1e-5
    with torch.no_grad():
        assert torch.allclose(model(x, style), whole.expr)


def test_style_code_changes_expression_through_hyperstyle():
    model = make()
    x = features("mel", 1, 6).expand(2, 6, 16, 80)
    style = style_codes(model)
    with torch.no_grad():
        expr = model(x, style)
        assert (expr[0] - expr[1]).abs().max() > 1e-4
        # Remove the style branch's dependence on style except via HyperStyle: equal
        # initial states and decoder inputs still give different outputs.
        z = model.audio_encoder(x)
        h0 = torch.zeros(model.cfg.expression.style_layers, 2, 16)
        deltas = model.expression.hyper(style)
        y = model.expression.style_lstm(z, h0, h0, deltas)[0]
    assert (y[0] - y[1]).abs().max() > 1e-4


def test_pose_sampling_is_reproducible_and_diverse():
    model = make()
    style = style_codes(model)
    x = features("mel", 2, 16)
    u = torch.rand(2, 4, generator=torch.Generator().manual_seed(0))
    a = generate_saas(model, x, style, u).pose
    assert torch.equal(a, generate_saas(model, x, style, u).pose)
    draws = torch.stack(
        [generate_saas(model, x, style, torch.full((2, 4), q)).pose for q in (0.05, 0.5, 0.95)]
    )
    assert (draws[0] - draws[2]).abs().max() > 1e-4


def test_step_state_keeps_shapes_and_dtypes():
    model = make("phoneme")
    state = model.init_state(3, style_codes(model, 3))
    with torch.no_grad():
        for _ in range(6):
            out = model.step(torch.randint(0, 41, (3,)), state)
            for name, old, new in zip(state._fields, state, out.state, strict=True):
                assert new.shape == old.shape and new.dtype == old.dtype, name
            state = out.state
    w = model.cfg.content.window
    assert torch.equal(state.frame, torch.full((3,), 6 - w))  # the first w steps warm up
    assert model.cfg.lookahead_frames == w == 2


def test_pose_teacher_forcing_contexts():
    model = make()
    p = model.cfg.pose
    z = torch.randn(1, 12, model.cfg.expression.d_audio)
    tokens = torch.tensor([[3, 5, 7]])
    history, audio = model.pose_contexts(z, tokens)
    assert history.tolist() == [[[p.start_token] * 2, [p.start_token, 3], [3, 5]]]
    assert torch.equal(audio[0, 0], torch.zeros(p.audio_frames, z.shape[-1]))
    assert torch.equal(audio[0, 2], z[0, 8 - p.audio_frames : 8])  # frames before token 2
    logits = model.pose_logits(z, torch.zeros(1, model.cfg.style_dim), tokens)
    assert logits.shape == (1, 3, p.codebook_size)


def test_step_exports_to_onnx_and_matches_onnxruntime(tmp_path):
    """The exporter (stylecast/export, tested in tests/test_export.py) takes this model:
    every graph matches PyTorch in onnxruntime at another batch size than exported."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from stylecast.export.onnx_export import check_export, export_model

    model = make("mel")
    manifest = export_model(model, tmp_path)
    assert not model.training
    assert set(manifest["graphs"]) == {"step", "style", "pose_token", "pose_decode"}
    assert check_export(model, tmp_path, batch=3) < 1e-4


def test_hyperstyle_offsets_are_bounded_by_the_configured_scale():
    model = make()
    scale = model.cfg.expression.hyper_scale
    assert scale == 0.5  # the presets' bound
    style = style_codes(model) * 50.0  # far outside what the extractor gives
    torch.nn.init.normal_(model.expression.hyper.head_b.weight, std=5.0)
    with torch.no_grad():
        deltas = model.expression.hyper(style)
    largest = max(float(d.abs().max()) for pair in deltas.values() for d in pair)
    assert scale * 0.9 < largest <= scale  # saturated (float32 tanh reaches 1), W keeps its sign


def test_bounded_offsets_equal_the_unbounded_ones_near_zero():
    model = make()
    hyper = model.expression.hyper
    torch.nn.init.normal_(hyper.head_b.weight, std=1e-3)
    style = style_codes(model)
    with torch.no_grad():
        bounded = hyper(style)
        hyper.scale = None
        unbounded = hyper(style)
    for layer, (d_ih, d_hh) in unbounded.items():
        assert float(d_ih.abs().max()) > 1e-6  # not all zero
        assert torch.allclose(bounded[layer][0], d_ih, rtol=1e-3, atol=1e-9)
        assert torch.allclose(bounded[layer][1], d_hh, rtol=1e-3, atol=1e-9)


def without_codebook(frontend: str = "mel") -> SAAS:
    cfg = saas_config("tiny", frontend)
    cfg = dataclasses.replace(cfg, style=dataclasses.replace(cfg.style, codebook=False))
    torch.manual_seed(0)
    return SAAS(cfg).eval()


def test_no_codebook_pools_the_tokens_before_quantisation():
    model = without_codebook()
    extractor = model.style_extractor
    assert extractor.vq is None
    assert not any(key.startswith("style_extractor.vq.") for key in model.state_dict())
    clip = torch.rand(2, 40, 58)
    valid = torch.ones(2, 40, dtype=torch.bool)
    with torch.no_grad():
        ex = model.extract_style(clip, valid)
        s = model.cfg.style
        windows = clip[:, :32].reshape(2 * 2, s.window_frames, 58)  # two full windows
        h = extractor.encoder(extractor.position(extractor.inp(windows)))
        tokens = extractor.down(h.transpose(1, 2)).transpose(1, 2).reshape(2, -1, s.d_model)
    assert float(ex.vq_loss) == 0.0 and bool((ex.indices == -1).all())
    # The first 8 tokens come from the two full windows: unquantised, they match directly.
    n = tokens.shape[1]
    with torch.no_grad():
        alone = extractor.pool(tokens, torch.ones(2, n, dtype=torch.bool))
        ex32 = model.extract_style(clip[:, :32], valid[:, :32])
    assert torch.allclose(ex32.code, alone, atol=1e-5)
    assert (ex.code[0] - ex.code[1]).abs().max() > 1e-4  # clips differ, codes differ


def test_no_codebook_model_keeps_the_other_modules_initialisation():
    plain = make()
    ablated = without_codebook()
    torch.nn.init.normal_(ablated.expression.hyper.head_b.weight, std=0.3)  # as make() does
    ours = ablated.state_dict()
    for key, value in plain.state_dict().items():
        if not key.startswith("style_extractor.vq."):
            assert torch.equal(ours[key], value), key


def test_no_codebook_generate_equals_step_by_step():
    model = without_codebook()
    x = features("mel", 2, 9)
    clip = torch.rand(2, 24, 58)
    with torch.no_grad():
        style = model.extract_style(clip, torch.ones(2, 24, dtype=torch.bool)).code
    fpt = model.cfg.pose.frames_per_token
    u = torch.rand(2, pose_token_count(9, fpt), generator=torch.Generator().manual_seed(1))
    whole = generate_saas(model, x, style, u)
    streamed = stream(model, x, style, frame_uniforms(u, 9, fpt))
    assert (whole.expr - streamed.expr).abs().max() < 1e-5
    assert (whole.pose - streamed.pose).abs().max() < 1e-5


@pytest.mark.parametrize("audio_norm", [True, False])
def test_audio_encoder_output_keeps_its_scale_when_its_weights_grow(audio_norm):
    cfg = saas_config("tiny", "mel")
    cfg = dataclasses.replace(
        cfg, expression=dataclasses.replace(cfg.expression, audio_norm=audio_norm)
    )
    torch.manual_seed(0)
    model = SAAS(cfg).eval()
    x = features("mel", 2, 12)
    with torch.no_grad():
        before = model.audio_encoder(x)
        model.audio_encoder.mix.weight.mul_(50.0)  # as the unnormalised 6-hour model's grew
        model.audio_encoder.mix.bias.mul_(50.0)
        after = model.audio_encoder(x)
    assert float(before.abs().max()) > 0.1
    if audio_norm:  # what the LSTM gates see does not grow with the encoder's weights
        assert torch.allclose(after, before, atol=1e-2)  # LayerNorm's eps: not exact
    else:
        assert torch.allclose(after, 50.0 * before, rtol=1e-4, atol=1e-4)
