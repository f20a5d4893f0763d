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


def with_switches(**expression) -> SAAS:
    """A tiny SAAS with ExpressionConfig switches set and non-zero HyperStyle offsets."""
    cfg = saas_config("tiny", "mel")
    cfg = dataclasses.replace(cfg, expression=dataclasses.replace(cfg.expression, **expression))
    torch.manual_seed(0)
    model = SAAS(cfg).eval()
    torch.nn.init.normal_(model.expression.hyper.head_b.weight, std=0.3)
    return model


SWITCHES = [{"style_norm": True}, {"audio_skip": True}, {"style_norm": True, "audio_skip": True}]


@pytest.mark.parametrize("switches", SWITCHES)
def test_expression_switches_keep_generate_equal_to_step_by_step(switches):
    model = with_switches(**switches)
    style = style_codes(model) * 10.0
    x = features("mel", 2, 9)
    fpt = model.cfg.pose.frames_per_token
    u = torch.rand(2, pose_token_count(9, fpt), generator=torch.Generator().manual_seed(2))
    whole = generate_saas(model, x, style, u)
    streamed = stream(model, x, style, frame_uniforms(u, 9, fpt))
    assert (whole.expr - streamed.expr).abs().max() < 1e-5
    assert (whole.pose - streamed.pose).abs().max() < 1e-5


def test_style_norm_makes_the_expression_blind_to_the_code_scale():
    normed, plain = with_switches(style_norm=True), with_switches(style_norm=False)
    x = features("mel", 2, 6)
    style = style_codes(plain)
    with torch.no_grad():
        assert torch.allclose(normed(x, style), normed(x, 7.0 * style), atol=1e-5)
        assert (plain(x, style) - plain(x, 7.0 * style)).abs().max() > 1e-3
    names = {k for k in normed.state_dict() if "style_norm" in k}
    assert not names  # no weights: checkpoints without the switch load unchanged


def test_audio_skip_adds_the_audio_to_the_decoder_input():
    model = with_switches(audio_skip=True)
    x = features("mel", 1, 6)
    style = style_codes(model, 1)
    with torch.no_grad():
        before = model(x, style)
        model.expression.audio_skip.weight.zero_()
        model.expression.audio_skip.bias.zero_()
        zeroed = model(x, style)
        plain = with_switches(audio_skip=False)  # the same init but the skip's
        plain.load_state_dict({k: v for k, v in model.state_dict().items()
                               if "audio_skip" not in k})  # fmt: skip
        assert torch.allclose(plain(x, style), zeroed, atol=1e-6)
    assert (before - zeroed).abs().max() > 1e-4


def test_style_gain_scales_the_style_branch_and_its_offsets():
    model = with_switches(audio_skip=False)
    x = features("mel", 2, 6)
    style = style_codes(model)
    with torch.no_grad():
        full = model(x, style)
        model.expression.style_gain = 0.0  # the branch and Delta off: style only via decoder
        off = model(x, style)
        z = model.audio_encoder(x)
        e = model.expression
        st = e.zero_state(2)
        canonical, _ = e.canonical(z, (st.can_h, st.can_c))
        cond = style[:, None].expand(-1, 6, -1)
        expected = torch.sigmoid(e.decoder(torch.cat([canonical, cond], -1)))
    assert torch.allclose(off, expected, atol=1e-6)
    assert (full - off).abs().max() > 1e-4


@pytest.mark.parametrize("poles", [1, 2])
def test_pose_smoothing_poles_agree_between_generate_and_step(poles):
    cfg = saas_config("tiny", "mel")
    cfg = dataclasses.replace(cfg, pose=dataclasses.replace(cfg.pose, smoothing_poles=poles))
    torch.manual_seed(0)
    model = SAAS(cfg).eval()
    x = features("mel", 2, 13)
    style = style_codes(model)
    fpt = cfg.pose.frames_per_token
    u = torch.rand(2, pose_token_count(13, fpt), generator=torch.Generator().manual_seed(4))
    whole = generate_saas(model, x, style, u)
    streamed = stream(model, x, style, frame_uniforms(u, 13, fpt))
    assert (whole.pose - streamed.pose).abs().max() < 1e-5
    assert float(whole.pose.abs().max()) > 1e-3  # not trivially zero


def test_two_poles_remove_the_kink_a_code_boundary_leaves():
    from stylecast.models.sampling import smooth_pose

    step_input = torch.zeros(1, 40, 6)
    step_input[:, 8:] = 1.0  # one code boundary: the decoded pose jumps
    jerks = {}
    for poles in (1, 2):
        y = smooth_pose(step_input, 0.7, poles)[0, :, 0]
        jerks[poles] = float((y[2:] - 2 * y[1:-1] + y[:-2]).abs().max())
        assert float(y[-1]) == pytest.approx(1.0, abs=1e-3)  # it still gets there
    assert jerks[2] < 0.5 * jerks[1]


def test_configs_saved_before_the_switches_read_with_the_old_behaviour():
    from stylecast.models.config import config_from_dict, config_to_dict

    data = config_to_dict(saas_config("small"))
    for key in ("style_norm", "style_warmup", "audio_skip"):
        del data["fields"]["expression"][key]
    del data["fields"]["pose"]["smoothing_poles"]
    old = config_from_dict(data)
    assert (old.expression.style_norm, old.expression.style_warmup) == (False, 0)
    assert old.expression.audio_skip is False and old.pose.smoothing_poles == 1
    assert config_from_dict(config_to_dict(old)) == old
