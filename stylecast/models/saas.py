"""SAAS, "Say Anything with Any Style" (Tan et al., AAAI 2024), on ARKit-52 + 6-DoF pose.

- Style extraction: a transformer over 32-frame windows of the style clip, compressed to 4
  tokens per window, quantised against a 500-code style codebook and pooled by
  self-attention into the style code; auxiliary heads reconstruct the clip and classify
  its style (the triplet loss acts on the code).
- Expression: audio encoder -> canonical LSTM branch + style-specific LSTM branch (initial
  state from the style code, HyperStyle offsets W*(1+Delta) on its middle layers); their
  sum (+ a linear skip from the audio features, ExpressionConfig.audio_skip) and the
  style code are decoded by an MLP.
- Pose: a VQ pose codebook (one code = 8 frames) and a cross-modal transformer that reads
  the style, the audio of the 8 frames before a token and the last 4 tokens, and outputs
  logits over the next code; codes are sampled (temperature, top-k), decoded and smoothed
  causally (one or two one-pole filters in series, PoseConfig.smoothing_poles).

Look-ahead: none beyond the input features (the LSTMs are causal and the pose predictor
reads past audio only); with the phoneme front end the audio encoder's +-w window adds w
frames. The mel front end's 0.2 s window is the audio front end's business.

Differences from the paper, decided here: the audio encoder does not read a reference
expression (the avatar is neutral at rest); the pose encoder/decoder map each 8-frame chunk
on its own (so decoding streams); the cross-modal encoder and predictor are one transformer
over [style, audio, past tokens, query]; the audio skip (without it the full model's audio
encoder died early in training and the mouth ignored the speech: docs/training.md).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecast.models.config import SAASConfig
from stylecast.models.layers import (
    AttentionPooling,
    FrameEncoder,
    HyperStyle,
    ModulatedLSTM,
    PositionalEncoding,
    TransformerEncoder,
    VectorQuantizer,
    feature_shape,
    pad_sequence_ends,
    padding_frames,
    sample_top_k,
    sliding_windows,
)
from stylecast.models.outputs import StepOutput


class StyleExtraction(NamedTuple):
    code: Tensor  # (B, D) style code
    logits: Tensor  # (B, n_styles) style-classification logits
    recon: Tensor  # (B, S, n_motion) reconstruction of the (padded-to-window) clip
    vq_loss: Tensor  # () commitment (+ codebook) loss
    indices: Tensor  # (B, n_tokens) style-code indices (-1 without the codebook)
    token_valid: Tensor  # (B, n_tokens) bool
    perplexity: Tensor  # () codebook usage


class StyleExtractor(nn.Module):
    """Multi-task VQ style encoder: clip (B, S <= max_frames, n_motion) -> style code."""

    def __init__(self, cfg: SAASConfig) -> None:
        super().__init__()
        s = cfg.style
        self.cfg = s
        n_motion = cfg.motion.n_motion
        self.inp = nn.Linear(n_motion, s.d_model)
        self.position = PositionalEncoding(s.d_model, s.window_frames)
        self.encoder = TransformerEncoder(s.d_model, s.n_heads, s.d_ffn, s.n_layers, s.dropout)
        self.down = nn.Conv1d(s.d_model, s.d_model, s.frames_per_token, s.frames_per_token)
        vq = VectorQuantizer(
            s.codebook_size, s.d_model, s.commitment, s.codebook_update, s.ema_decay
        )
        # Without the codebook (the ablation) there is no quantiser and no codebook weights;
        # it is built all the same so every other module starts from the same random init.
        self.vq = vq if s.codebook else None
        self.pool = AttentionPooling(s.d_model)
        self.up = nn.ConvTranspose1d(s.d_model, s.d_model, s.frames_per_token, s.frames_per_token)
        self.decoder = TransformerEncoder(
            s.d_model, s.n_heads, s.d_ffn, s.decoder_layers, s.dropout
        )
        self.out = nn.Linear(s.d_model, n_motion)
        self.classifier = nn.Sequential(
            nn.Linear(s.d_model, s.d_model), nn.ReLU(), nn.Linear(s.d_model, s.n_styles)
        )

    def forward(self, clip: Tensor, valid: Tensor) -> StyleExtraction:
        """clip (B, S, n_motion), valid (B, S) bool; S <= max_frames."""
        s = self.cfg
        b, frames, _ = clip.shape
        assert frames <= s.max_frames, f"style clip of {frames} > {s.max_frames} frames"
        n_win = -(-frames // s.window_frames)
        pad = n_win * s.window_frames - frames
        clip = F.pad(clip, (0, 0, 0, pad))
        valid = F.pad(valid, (0, pad), value=False)
        x = clip.reshape(b * n_win, s.window_frames, -1)  # (B*nW, Wf, n_motion)
        key_pad = ~valid.reshape(b * n_win, s.window_frames)
        h = self.encoder(self.position(self.inp(x)), key_pad)  # (B*nW, Wf, D)
        tokens = self.down(h.transpose(1, 2)).transpose(1, 2)  # (B*nW, tpw, D)
        tokens = tokens.reshape(b, -1, s.d_model)  # (B, n_tokens, D)
        token_valid = valid.reshape(b, -1, s.frames_per_token)[..., 0]  # (B, n_tokens)
        if self.vq is None:  # no codebook: the tokens themselves, no VQ loss, no indices
            quantized, vq_loss = tokens, tokens.new_zeros(())
            indices = torch.full(token_valid.shape, -1, dtype=torch.long, device=clip.device)
            perplexity = tokens.new_zeros(())
        else:
            vq = self.vq(tokens, token_valid)
            quantized, vq_loss, indices, perplexity = (
                vq.quantized,
                vq.loss,
                vq.indices,
                vq.perplexity,
            )
        code = self.pool(quantized, token_valid)
        q = quantized.reshape(b * n_win, s.tokens_per_window, s.d_model)
        up = self.up(q.transpose(1, 2)).transpose(1, 2)  # (B*nW, Wf, D)
        recon = self.out(self.decoder(self.position(up))).reshape(b, -1, clip.shape[-1])
        return StyleExtraction(
            code, self.classifier(code), recon, vq_loss, indices, token_valid, perplexity
        )


class AudioEncoder(nn.Module):
    """Per-frame features over a +-w window -> z_a (d_audio) per frame.

    z_a is layer-normalised (ExpressionConfig.audio_norm): without it the shipped 6-hour
    model's z_a grew to a mean |z| of 17, every LSTM gate it feeds saturated, and the
    expression no longer depended on the audio (swapping the utterance moved no weight by
    more than 3e-4)."""

    def __init__(self, cfg: SAASConfig) -> None:
        super().__init__()
        self.content = cfg.content
        d = cfg.expression.d_audio
        self.frame = FrameEncoder(cfg.content, d)
        self.mix = nn.Linear(cfg.content.window_frames * d, d)
        self.norm = nn.LayerNorm(d) if cfg.expression.audio_norm else nn.Identity()

    def forward(self, features: Tensor) -> Tensor:
        """(B, T) ids or (B, T, 16, 80) log-mel -> (B, T, d_audio); ends read as padding."""
        frames = torch.relu(self.frame(pad_sequence_ends(features, self.content)))
        windows = sliding_windows(frames, self.content.window_frames)  # (B, T, W, d)
        return self.norm(torch.relu(self.mix(windows.flatten(2))))

    def encode_window(self, window: Tensor) -> Tensor:
        """(B, W, ...) input frames t-w..t+w -> (B, d_audio) for frame t."""
        frames = torch.relu(self.frame(window))  # (B, W, d)
        return self.norm(torch.relu(self.mix(frames.flatten(1))))


class ExpressionState(NamedTuple):
    can_h: Tensor  # (canonical_layers, B, H)
    can_c: Tensor
    sty_h: Tensor  # (style_layers, B, H)
    sty_c: Tensor


class ExpressionBranches(nn.Module):
    """Canonical branch + HyperStyle-modulated style branch + MLP decoder."""

    def __init__(self, cfg: SAASConfig) -> None:
        super().__init__()
        e = cfg.expression
        self.cfg = e
        self.activation = cfg.motion.expr_activation
        d_s = cfg.style_dim
        h = e.canonical_hidden
        self.canonical = nn.LSTM(e.d_audio, h, e.canonical_layers, batch_first=True)
        self.style_lstm = ModulatedLSTM(e.d_audio, e.style_hidden, e.style_layers)
        self.initial = nn.Linear(d_s, 2 * e.style_layers * e.style_hidden)
        shapes = self.style_lstm.layer_shapes()
        self.hyper = HyperStyle(
            d_s,
            e.hyper_hidden,
            {i: (shapes[i][0], shapes[i][1], e.style_hidden) for i in e.hyper_layers},
            e.hyper_rank,
            e.hyper_scale,
        )
        self.decoder = nn.Sequential(
            nn.Linear(h + d_s, e.decoder_hidden), nn.ReLU(),
            nn.Linear(e.decoder_hidden, e.decoder_hidden), nn.ReLU(),
            nn.Linear(e.decoder_hidden, cfg.motion.n_expr),
        )  # fmt: skip
        # No weights (nothing drawn from the RNG): the modules after it start as before.
        self.style_norm = nn.LayerNorm(d_s, elementwise_affine=False) if e.style_norm else None
        self.audio_skip = nn.Linear(e.d_audio, h) if e.audio_skip else None
        # Training-time ramp of the style branch (ExpressionConfig.style_warmup); 1 in use.
        self.style_gain = 1.0
        # The skip's gain: 1, or 0 in use when it was a faded scaffold (skip_fade_end).
        self.skip_gain = 0.0 if e.skip_fade_end > 0 else 1.0

    def read_style(self, style: Tensor) -> Tensor:
        """The style code as these branches read it (layer-normalised with style_norm)."""
        return style if self.style_norm is None else self.style_norm(style)

    def initial_style_state(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """style (B, D) -> h0, c0 (style_layers, B, H) of the style branch."""
        e = self.cfg
        hc = torch.tanh(self.initial(self.read_style(style)))
        hc = hc.reshape(style.shape[0], 2, e.style_layers, -1)
        return hc[:, 0].transpose(0, 1), hc[:, 1].transpose(0, 1)

    def zero_state(self, batch: int, device=None) -> ExpressionState:
        e = self.cfg
        can = torch.zeros(e.canonical_layers, batch, e.canonical_hidden, device=device)
        sty = torch.zeros(e.style_layers, batch, e.style_hidden, device=device)
        return ExpressionState(can, can.clone(), sty, sty.clone())

    def forward(
        self, z: Tensor, style: Tensor, state: ExpressionState
    ) -> tuple[Tensor, ExpressionState]:
        """z (B, T, d_audio), style (B, D) -> expression (B, T, n_expr) and the new state."""
        style = self.read_style(style)
        canonical, (can_h, can_c) = self.canonical(z, (state.can_h, state.can_c))
        deltas = self.hyper(style)
        gain = self.style_gain
        if gain != 1.0:  # a Python float set by the trainer: no branch in an exported graph
            deltas = {k: (gain * d_ih, gain * d_hh) for k, (d_ih, d_hh) in deltas.items()}
        stylised, sty_h, sty_c = self.style_lstm(z, state.sty_h, state.sty_c, deltas)
        latent = canonical + gain * stylised  # (B, T, H)
        if self.audio_skip is not None and self.skip_gain != 0.0:  # a Python float
            skip = self.audio_skip(z)
            latent = latent + (skip if self.skip_gain == 1.0 else self.skip_gain * skip)
        cond = style[:, None, :].expand(-1, z.shape[1], -1)
        expr = self.decoder(torch.cat([latent, cond], dim=-1))
        if self.activation == "sigmoid":
            expr = torch.sigmoid(expr)
        return expr, ExpressionState(can_h, can_c, sty_h, sty_c)


class PoseVQOutput(NamedTuple):
    recon: Tensor  # (B, T, n_pose)
    indices: Tensor  # (B, T / frames_per_token) int64
    loss: Tensor  # () VQ loss
    perplexity: Tensor  # ()


class PoseVQ(nn.Module):
    """Pose chunks of 8 frames <-> one code of a 200-entry codebook."""

    def __init__(self, cfg: SAASConfig) -> None:
        super().__init__()
        p = cfg.pose
        self.fpt = p.frames_per_token
        self.n_pose = cfg.motion.n_pose
        chunk = p.frames_per_token * cfg.motion.n_pose
        self.encoder = nn.Sequential(
            nn.Linear(chunk, p.d_code), nn.ReLU(), nn.Linear(p.d_code, p.d_code)
        )
        self.vq = VectorQuantizer(
            p.codebook_size, p.d_code, p.commitment, p.codebook_update, p.ema_decay
        )
        self.decoder = nn.Sequential(
            nn.Linear(p.d_code, p.d_code), nn.ReLU(), nn.Linear(p.d_code, chunk)
        )

    def encode(self, pose: Tensor) -> Tensor:
        """pose (B, T, n_pose), T a multiple of frames_per_token -> (B, T / fpt, d_code)."""
        b, t, _ = pose.shape
        assert t % self.fpt == 0, f"{t} frames is not a multiple of {self.fpt}"
        return self.encoder(pose.reshape(b, t // self.fpt, self.fpt * self.n_pose))

    def decode(self, codes: Tensor) -> Tensor:
        """codes (B, K, d_code) -> pose (B, K * fpt, n_pose)."""
        return self.decoder(codes).reshape(codes.shape[0], -1, self.n_pose)

    def decode_indices(self, indices: Tensor) -> Tensor:
        """(B, K) int64 -> (B, K * fpt, n_pose)."""
        return self.decode(self.vq.lookup(indices))

    def forward(self, pose: Tensor) -> PoseVQOutput:
        vq = self.vq(self.encode(pose))
        return PoseVQOutput(self.decode(vq.quantized), vq.indices, vq.loss, vq.perplexity)


class PosePredictor(nn.Module):
    """[style, audio window, past pose tokens, query] -> logits over the next pose code."""

    def __init__(self, cfg: SAASConfig) -> None:
        super().__init__()
        p = cfg.pose
        self.token = nn.Embedding(p.codebook_size + 1, p.hidden)  # + the start token
        self.audio = nn.Linear(cfg.expression.d_audio, p.hidden)
        self.style = nn.Linear(cfg.style_dim, p.hidden)
        self.query = nn.Parameter(torch.zeros(1, 1, p.hidden))
        length = 1 + p.audio_frames + p.context_tokens + 1
        self.position = nn.Parameter(torch.randn(1, length, p.hidden) * 0.02)
        self.encoder = TransformerEncoder(p.hidden, p.n_heads, p.d_ffn, p.n_layers, p.dropout)
        self.head = nn.Linear(p.hidden, p.codebook_size)

    def forward(self, tokens: Tensor, audio: Tensor, style: Tensor) -> Tensor:
        """tokens (N, C) int64, audio (N, A, d_audio), style (N, D) -> logits (N, n_codes)."""
        x = torch.cat(
            [
                self.style(style)[:, None],
                self.audio(audio),
                self.token(tokens),
                self.query.expand(tokens.shape[0], -1, -1),
            ],
            dim=1,
        )
        return self.head(self.encoder(x + self.position)[:, -1])


class SAASState(NamedTuple):
    """Everything a SAAS step carries from one frame to the next (all tensors)."""

    window: Tensor  # (B, 2w, *feature) last 2w input frames (w = 0 with the mel front end)
    style: Tensor  # (B, D) style code (constant within a session)
    started: Tensor  # (B, 1) float: 0 before the first step (style branch starts from h0)
    can_h: Tensor  # (canonical_layers, B, H) canonical LSTM state
    can_c: Tensor
    sty_h: Tensor  # (style_layers, B, H) style LSTM state
    sty_c: Tensor
    audio: Tensor  # (B, audio_frames, d_audio) z_a of the frames before this one
    tokens: Tensor  # (B, context_tokens) int64 last pose codes (start token at first)
    chunk: Tensor  # (B, frames_per_token, n_pose) decoded frames of the current pose code
    received: Tensor  # (B,) int64 input frames received so far
    frame: Tensor  # (B,) int64 output frames emitted so far (received - w, once positive)
    pose: Tensor  # (B, n_pose) last smoothed pose (the output of the last pole)
    pose_inner: Tensor  # (B, n_pose) the first pole's last output (= pose with one pole)
    uniform: Tensor  # (B,) float in [0, 1): the caller's random number for this step


class SAAS(nn.Module):
    """The whole SAAS motion model; `step` is the live path, the rest trains it."""

    def __init__(self, cfg: SAASConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.style_extractor = StyleExtractor(cfg)
        self.audio_encoder = AudioEncoder(cfg)
        self.expression = ExpressionBranches(cfg)
        self.pose_vq = PoseVQ(cfg)
        self.pose_predictor = PosePredictor(cfg)

    def extract_style(self, clip: Tensor, valid: Tensor) -> StyleExtraction:
        """clip (B, S, n_motion), valid (B, S) bool -> style code and auxiliary outputs."""
        return self.style_extractor(clip, valid)

    def forward(self, features: Tensor, style: Tensor) -> Tensor:
        """Expression of a whole sequence: features (B, T[, 16, 80]), style (B, D) ->
        (B, T, n_expr). The style branch starts from its style-derived state."""
        z = self.audio_encoder(features)
        return self.expression_from_audio(z, style)

    def expression_from_audio(self, z: Tensor, style: Tensor) -> Tensor:
        """z (B, T, d_audio), style (B, D) -> (B, T, n_expr)."""
        state = self.expression.zero_state(z.shape[0], z.device)
        h0, c0 = self.expression.initial_style_state(style)
        expr, _ = self.expression(z, style, state._replace(sty_h=h0, sty_c=c0))
        return expr

    def pose_contexts(self, z: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forcing inputs for every token of a sequence.

        z (B, T, d_audio), tokens (B, K) -> histories (B, K, C) and audio windows
        (B, K, A, d_audio); token k sees tokens k-C..k-1 and the A frames before frame
        k * frames_per_token (zeros before the start)."""
        p = self.cfg.pose
        b, k = tokens.shape
        start = torch.full((b, p.context_tokens), p.start_token, dtype=torch.long,
                           device=tokens.device)  # fmt: skip
        history = sliding_windows(torch.cat([start, tokens], 1), p.context_tokens)[:, :k]
        z_pad = F.pad(z, (0, 0, p.audio_frames, 0))  # (B, A + T, d)
        audio = sliding_windows(z_pad, p.audio_frames)[:, :: p.frames_per_token][:, :k]
        assert audio.shape[1] == k, "the audio covers fewer tokens than given"
        return history, audio

    def pose_logits(self, z: Tensor, style: Tensor, tokens: Tensor) -> Tensor:
        """Teacher-forced logits (B, K, n_codes) for the pose codes `tokens` (B, K)."""
        history, audio = self.pose_contexts(z, tokens)
        b, k = tokens.shape
        logits = self.pose_predictor(
            history.reshape(b * k, -1),
            audio.reshape(b * k, *audio.shape[2:]),
            style.repeat_interleave(k, dim=0),
        )
        return logits.reshape(b, k, -1)

    def next_pose_token(
        self, history: Tensor, audio: Tensor, style: Tensor, uniform: Tensor
    ) -> Tensor:
        """One sampled code: history (B, C), audio (B, A, d), style (B, D), uniform (B,)."""
        p = self.cfg.pose
        logits = self.pose_predictor(history, audio, style)
        return sample_top_k(logits, uniform, p.temperature, p.top_k)

    # ------------------------------------------------------------ streaming

    def init_state(self, batch: int, style: Tensor | None = None) -> SAASState:
        """State before the first frame; the style code is zeros unless given."""
        cfg = self.cfg
        p = cfg.pose
        device = self.pose_predictor.query.device
        if style is None:
            style = torch.zeros(batch, cfg.style_dim, device=device)
        assert style.shape == (batch, cfg.style_dim), style.shape
        expr = self.expression.zero_state(batch, device)
        n_pose = cfg.motion.n_pose
        return SAASState(
            window=padding_frames(cfg.content, batch, 2 * cfg.content.window, device),
            style=style,
            started=torch.zeros(batch, 1, device=device),
            can_h=expr.can_h,
            can_c=expr.can_c,
            sty_h=expr.sty_h,
            sty_c=expr.sty_c,
            audio=torch.zeros(batch, p.audio_frames, cfg.expression.d_audio, device=device),
            tokens=torch.full((batch, p.context_tokens), p.start_token, dtype=torch.long,
                              device=device),
            chunk=torch.zeros(batch, p.frames_per_token, n_pose, device=device),
            received=torch.zeros(batch, dtype=torch.long, device=device),
            frame=torch.zeros(batch, dtype=torch.long, device=device),
            pose=torch.zeros(batch, n_pose, device=device),
            pose_inner=torch.zeros(batch, n_pose, device=device),
            uniform=torch.full((batch,), 0.5, device=device),
        )  # fmt: skip

    def step(self, features_t: Tensor, state: SAASState) -> StepOutput:
        """features_t (B,) ids or (B, 16, 80) log-mel of input frame t -> the motion of
        frame t - w (w = 0 with the mel front end); the first w outputs are warm-up (state
        unchanged but the window). A new pose code is drawn, with
        state.uniform, on every frames_per_token-th frame; the predictor runs every frame
        and its result is selected arithmetically, so the graph has no branches."""
        cfg = self.cfg
        p = cfg.pose
        assert features_t.shape[1:] == feature_shape(cfg.content), features_t.shape
        window = torch.cat([state.window, features_t[:, None]], dim=1)  # (B, W, ...)
        z = self.audio_encoder.encode_window(window)  # (B, d_audio)

        # Expression: the style branch starts from h0(style) on the first step.
        h0, c0 = self.expression.initial_style_state(state.style)
        started = state.started[None]  # (1, B, 1)
        expr_state = ExpressionState(
            state.can_h,
            state.can_c,
            started * state.sty_h + (1.0 - started) * h0,
            started * state.sty_c + (1.0 - started) * c0,
        )
        expr, expr_state = self.expression(z[:, None], state.style, expr_state)

        # Pose: on a token boundary, sample the next code from the audio before this frame.
        boundary = (state.frame % p.frames_per_token) == 0  # (B,)
        code = self.next_pose_token(state.tokens, state.audio, state.style, state.uniform)
        shifted = torch.cat([state.tokens[:, 1:], code[:, None]], dim=1)
        tokens = torch.where(boundary[:, None], shifted, state.tokens)
        chunk = torch.where(
            boundary[:, None, None], self.pose_vq.decode_indices(code[:, None]), state.chunk
        )
        phase = (state.frame % p.frames_per_token)[:, None, None].expand(-1, 1, chunk.shape[-1])
        raw = torch.gather(chunk, 1, phase)[:, 0]  # (B, n_pose)
        # Causal smoothing, one or two poles in series (PoseConfig.smoothing_poles).
        inner = p.smoothing * state.pose_inner + (1.0 - p.smoothing) * raw
        if p.smoothing_poles == 2:
            pose = p.smoothing * state.pose + (1.0 - p.smoothing) * inner
        else:
            pose = inner

        # The first w steps only fill the look-ahead window: nothing else may change.
        ready = state.received >= cfg.content.window  # (B,)
        r_seq = ready[None, :, None]  # for (L, B, H)
        new_state = SAASState(
            window=window[:, 1:],
            style=state.style,
            started=torch.where(ready[:, None], torch.ones_like(state.started), state.started),
            can_h=torch.where(r_seq, expr_state.can_h, state.can_h),
            can_c=torch.where(r_seq, expr_state.can_c, state.can_c),
            sty_h=torch.where(r_seq, expr_state.sty_h, state.sty_h),
            sty_c=torch.where(r_seq, expr_state.sty_c, state.sty_c),
            audio=torch.where(
                ready[:, None, None], torch.cat([state.audio[:, 1:], z[:, None]], 1), state.audio
            ),
            tokens=torch.where(ready[:, None], tokens, state.tokens),
            chunk=torch.where(ready[:, None, None], chunk, state.chunk),
            received=state.received + 1,
            frame=state.frame + ready.long(),
            pose=torch.where(ready[:, None], pose, state.pose),
            pose_inner=torch.where(ready[:, None], inner, state.pose_inner),
            uniform=state.uniform,
        )
        return StepOutput(expr[:, 0], pose, new_state)
