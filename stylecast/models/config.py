"""Model configurations: frozen dataclasses, validated once, saved with every checkpoint.

Every dimension the models use comes from here, so the same code trains on ARKit-52 + 6-DoF
pose (the default) or on 64-d 3DMM expression data (give `MotionSpec` 64 names and the
names of its mouth-related bases). Defaults are the papers' published figures (see
docs/models.md); `preset="small"` is sized to train on a 2-core CPU and `preset="tiny"` is
for tests only.

`config_to_dict` / `config_from_dict` turn any of these into plain JSON and back; the
round trip is exact and unknown or missing keys raise `FormatError` naming them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.face import ARKIT_NAMES, FPS, LOWER_FACE_NAMES, N_POSE
from stylecast.engine.mel import MAX_ABS as MEL_MAX_ABS
from stylecast.engine.phonemes import N_PHONEMES, SIL_ID

FRONTENDS = ("phoneme", "mel")  # content front ends: per-frame phoneme id or log-mel window
EXPR_ACTIVATIONS = ("sigmoid", "none")  # sigmoid for ARKit weights in [0, 1]; none for 3DMM
CODEBOOK_UPDATES = ("ema", "loss")  # how a VQ codebook learns: EMA of assignments, or a loss
PRESETS = ("default", "small", "tiny")
# Log-mel value of digital silence in the audio front end (engine/mel.py scales to [-4, 4]).
MEL_FLOOR = -MEL_MAX_ABS  # -4.0


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise InputError(what)


@dataclass(frozen=True)
class MotionSpec:
    """The motion space a model reads (style clips) and writes (per-frame output)."""

    expr_names: tuple[str, ...] = ARKIT_NAMES  # expression dimensions, in data order
    lower_names: tuple[str, ...] = LOWER_FACE_NAMES  # the lower-face (mouth) subset, by name
    n_pose: int = N_POSE  # head-pose dimensions: pitch, yaw, roll, tx, ty, tz
    fps: int = FPS  # frames per second of every sequence: 30 -> 33.3 ms per frame
    expr_activation: str = "sigmoid"  # output squashing: "sigmoid" (ARKit) or "none" (3DMM)

    def __post_init__(self) -> None:
        _check(len(self.expr_names) >= 2, f"expr_names needs >= 2 names, got {self.expr_names}")
        _check(
            len(set(self.expr_names)) == len(self.expr_names),
            f"expr_names must be unique, got {self.expr_names}",
        )
        unknown = [n for n in self.lower_names if n not in self.expr_names]
        _check(not unknown, f"lower_names not in expr_names: {unknown}")
        _check(
            0 < len(self.lower_names) < len(self.expr_names),
            f"lower_names must be a proper non-empty subset, got {len(self.lower_names)} names",
        )
        _check(self.n_pose >= 1, f"n_pose must be >= 1, got {self.n_pose}")
        _check(self.fps > 0, f"fps must be > 0, got {self.fps}")
        _check(
            self.expr_activation in EXPR_ACTIVATIONS,
            f"expr_activation must be one of {EXPR_ACTIVATIONS}, got {self.expr_activation!r}",
        )

    @property
    def n_expr(self) -> int:
        return len(self.expr_names)  # 52 for ARKit

    @property
    def n_motion(self) -> int:
        return self.n_expr + self.n_pose  # 58: one style-clip frame is expr then pose

    @property
    def lower_index(self) -> tuple[int, ...]:
        """Positions of the lower-face names in expr_names, in expr_names order."""
        lower = set(self.lower_names)
        return tuple(i for i, n in enumerate(self.expr_names) if n in lower)

    @property
    def upper_index(self) -> tuple[int, ...]:
        lower = set(self.lower_names)
        return tuple(i for i, n in enumerate(self.expr_names) if n not in lower)


@dataclass(frozen=True)
class ContentConfig:
    """What the model hears per video frame, and how many neighbouring frames it sees."""

    frontend: str = "phoneme"  # "phoneme": one id per frame; "mel": (mel_frames, n_mels) log-mel
    n_phonemes: int = N_PHONEMES  # phoneme vocabulary: 39 CMU phones + SIL + NSN = 41
    phoneme_pad_id: int = SIL_ID  # id used for frames before the start / after the end
    phoneme_dim: int = 128  # phoneme embedding width
    n_mels: int = 80  # log-mel bins per mel frame
    mel_frames: int = 16  # mel frames per video frame: 16 x 12.5 ms hop = 0.2 s of audio
    mel_pad_value: float = MEL_FLOOR  # log-mel value used for padding frames (silence)
    mel_channels: int = 128  # width of the per-frame mel convolution stack
    window: int = 5  # half-width w: frame t sees frames t-w..t+w, so w frames of look-ahead

    def __post_init__(self) -> None:
        _check(self.frontend in FRONTENDS, f"frontend must be one of {FRONTENDS}")
        _check(self.n_phonemes >= 2, f"n_phonemes must be >= 2, got {self.n_phonemes}")
        _check(
            0 <= self.phoneme_pad_id < self.n_phonemes,
            f"phoneme_pad_id must be in [0, {self.n_phonemes}), got {self.phoneme_pad_id}",
        )
        _check(self.mel_frames >= 4, f"mel_frames must be >= 4, got {self.mel_frames}")
        _check(self.window >= 0, f"window must be >= 0, got {self.window}")
        for name in ("phoneme_dim", "n_mels", "mel_channels"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1")

    @property
    def window_frames(self) -> int:
        return 2 * self.window + 1  # 11 frames for w = 5 (367 ms)

    @property
    def lookahead_frames(self) -> int:
        """Video frames of future input a step needs before it can emit frame t."""
        return self.window  # w = 5 -> 167 ms at 30 FPS


def _check_attention(d_model: int, n_heads: int, what: str) -> None:
    _check(
        d_model >= 1 and n_heads >= 1 and d_model % n_heads == 0,
        f"{what}: d_model {d_model} must be a positive multiple of n_heads {n_heads}",
    )


@dataclass(frozen=True)
class StyleTalkConfig:
    """StyleTalk (Ma et al. 2023) adapted to ARKit-52: about 22M parameters by default."""

    motion: MotionSpec = field(default_factory=MotionSpec)  # output / style-clip space
    content: ContentConfig = field(default_factory=ContentConfig)  # +-5 frame phoneme window
    d_model: int = 256  # width of every transformer and of the style code
    n_heads: int = 8  # attention heads in every transformer
    d_ffn: int = 1024  # feed-forward width (the dynamic first FFN linear is d_model -> d_ffn)
    dropout: float = 0.1  # dropout in attention and FFN (off in eval mode)
    content_layers: int = 3  # transformer layers over the content window
    style_layers: int = 3  # transformer layers over the style clip
    decoder_layers: int = 3  # layers in each of the lower- and upper-face decoders
    max_style_frames: int = 256  # longest style clip: 256 frames = 8.5 s
    n_experts: int = 8  # K expert kernels in each dynamic FFN linear
    expert_temperature: float = 30.0  # T in softmax(MLP(style) / T): high T keeps mixes soft
    # Dynamic convolution (Chen et al. 2020) anneals T linearly from a high start down to
    # expert_temperature over the first steps, so the experts can specialise; held at 30
    # the mix is uniform (0.127 of 8 for every code in the 20-hour models). 0: no anneal
    # (T = expert_temperature throughout, as every checkpoint made before these fields).
    expert_anneal_steps: int = 0
    expert_temperature_start: float = 30.0  # T at generator step 0 when annealing
    expert_hidden: int = 64  # hidden width of the expert-attention MLP (256 -> 64 -> 8)
    pose_hidden: int = 256  # hidden width of the pose regression head (no pose in the paper)
    # a in y_t = a y_(t-1) + (1 - a) x_t: a causal one-pole low-pass on the pose head's
    # output, from the first frame's raw pose; the same in forward (training sees it) and
    # step (carried state). 0: off (the checkpoints made before it). 0.8: time constant
    # 1 / (1 - a) = 5 frames = 167 ms; on the 20-hour model's val poses it took the jerk
    # from 5.4x the truth's to 1.2x (docs/training.md).
    pose_smoothing: float = 0.8

    def __post_init__(self) -> None:
        _check_attention(self.d_model, self.n_heads, "StyleTalkConfig")
        _check(0.0 <= self.pose_smoothing < 1.0,
               f"pose_smoothing must be in [0, 1), got {self.pose_smoothing}")  # fmt: skip
        for name in ("d_ffn", "content_layers", "style_layers", "decoder_layers", "n_experts"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.max_style_frames >= 8, "max_style_frames must be >= 8")
        _check(self.expert_temperature > 0, "expert_temperature must be > 0")
        _check(self.expert_temperature_start > 0, "expert_temperature_start must be > 0")
        _check(self.expert_anneal_steps >= 0, "expert_anneal_steps must be >= 0")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def lookahead_frames(self) -> int:
        return self.content.lookahead_frames


@dataclass(frozen=True)
class StyleVQConfig:
    """SAAS multi-task VQ style extraction: clip -> tokens -> codebook -> pooled style code."""

    d_model: int = 256  # token width = codebook width = style-code width (d_s)
    n_heads: int = 8  # attention heads
    d_ffn: int = 1024  # feed-forward width
    n_layers: int = 3  # encoder layers over each clip window
    decoder_layers: int = 2  # layers of the reconstruction decoder (auxiliary task)
    window_frames: int = 32  # T': frames per encoded window (1.07 s)
    frames_per_token: int = 8  # omega: 32-frame window -> 4 tokens
    max_frames: int = 256  # longest style clip (8 windows, 32 tokens)
    codebook_size: int = 500  # N style codes (the paper's ablation: 250 / 750 are worse)
    commitment: float = 0.25  # beta of the commitment loss ||z - sg[q]||^2
    codebook_update: str = "ema"  # "ema" (decay below) or "loss" (||sg[z] - q||^2)
    ema_decay: float = 0.99  # EMA decay of codebook statistics
    n_styles: int = 32  # classes of the style-classification head (training styles)
    dropout: float = 0.1  # dropout in attention and FFN
    # False: the "no codebook" ablation: the code is pooled from the encoder's tokens
    # before quantisation, the clip is reconstructed from them, and there is no VQ loss.
    codebook: bool = True

    def __post_init__(self) -> None:
        _check_attention(self.d_model, self.n_heads, "StyleVQConfig")
        _check(
            self.frames_per_token >= 1 and self.window_frames % self.frames_per_token == 0,
            f"window_frames {self.window_frames} must be a multiple of frames_per_token "
            f"{self.frames_per_token}",
        )
        _check(
            self.max_frames % self.window_frames == 0,
            f"max_frames {self.max_frames} must be a multiple of window_frames",
        )
        _check(self.codebook_size >= 2, "codebook_size must be >= 2")
        _check(self.codebook_update in CODEBOOK_UPDATES, f"codebook_update in {CODEBOOK_UPDATES}")
        _check(0.0 < self.ema_decay < 1.0, "ema_decay must be in (0, 1)")
        _check(self.n_styles >= 2, f"n_styles must be >= 2, got {self.n_styles}")
        _check(self.n_layers >= 1 and self.decoder_layers >= 1, "layers must be >= 1")

    @property
    def tokens_per_window(self) -> int:
        return self.window_frames // self.frames_per_token  # 4


@dataclass(frozen=True)
class ExpressionConfig:
    """SAAS expression branches: canonical LSTM + HyperStyle-modulated style LSTM."""

    d_audio: int = 256  # audio-encoder output width (z_a)
    canonical_layers: int = 4  # canonical-branch LSTM layers
    canonical_hidden: int = 64  # canonical-branch LSTM width
    style_layers: int = 6  # style-specific-branch LSTM layers
    style_hidden: int = 64  # style-branch width (must equal canonical_hidden: they are added)
    hyper_layers: tuple[int, ...] = (1, 2, 3, 4)  # style-branch layers given W*(1+Delta)
    hyper_rank: int = 4  # rank of each Delta = A @ B^T (full-rank would be 33M parameters)
    hyper_hidden: int = 256  # hidden width of the HyperStyle MLP
    # |Delta| < hyper_scale: Delta = s * tanh(A @ B^T / rank / s), so W * (1 + Delta) stays
    # within [0.5 W, 1.5 W] at 0.5. None: unbounded (the checkpoints made before the bound,
    # whose offsets reached 9-19 and saturated the style LSTM).
    hyper_scale: float | None = 0.5
    # LayerNorm on the audio encoder's output z_a. False: the checkpoints made before it,
    # whose z_a reached |z| ~ 17 and saturated the LSTM gates (the mouth ignored the audio).
    audio_norm: bool = True
    decoder_hidden: int = 256  # hidden width of the MLP decoder (z + style -> expression)
    # LayerNorm (no gain or bias) on the style code wherever the expression branches read
    # it: the style LSTM's initial state, HyperStyle and the decoder. False: the checkpoints
    # made before it, which read the code as the extractor gives it.
    style_norm: bool = False
    # Training only: over the first style_warmup steps of the expression stage the style
    # branch's output and HyperStyle's Delta are ramped in from 0 (gain step / warmup), so
    # the canonical audio path forms first. 0: no ramp (the checkpoints made before it).
    style_warmup: int = 0
    # A linear skip from the audio features z_a to the branches' sum (the decoder's input),
    # so the decoder always sees the audio. Without it the 20-hour full model's audio
    # encoder died in its first 100 steps and the mouth never moved (docs/models.md).
    # False: the checkpoints made before it.
    audio_skip: bool = True
    # Training only: the skip as a scaffold. Its gain goes 1 -> 0 linearly over steps
    # [skip_fade_start, skip_fade_end) of the expression stage and is 0 in use, so the
    # trained model is the paper's (the audio through the LSTMs). 0, 0: no fade (the skip
    # stays). Over 100-400 the canonical LSTM took the speech over (docs/training.md).
    skip_fade_start: int = 0
    skip_fade_end: int = 0

    def __post_init__(self) -> None:
        _check(self.canonical_layers >= 1 and self.style_layers >= 1, "LSTM layers must be >= 1")
        _check(
            self.style_hidden == self.canonical_hidden,
            f"style_hidden {self.style_hidden} must equal canonical_hidden "
            f"{self.canonical_hidden} (the branches are summed)",
        )
        bad = [i for i in self.hyper_layers if not 0 <= i < self.style_layers]
        _check(not bad, f"hyper_layers must index style layers 0..{self.style_layers - 1}: {bad}")
        _check(len(set(self.hyper_layers)) == len(self.hyper_layers), "hyper_layers repeat")
        _check(self.hyper_rank >= 1, "hyper_rank must be >= 1")
        _check(
            self.hyper_scale is None
            or (isinstance(self.hyper_scale, (int, float)) and self.hyper_scale > 0),
            f"hyper_scale must be a number > 0 or None (unbounded), got {self.hyper_scale!r}",
        )
        _check(self.style_warmup >= 0, f"style_warmup must be >= 0, got {self.style_warmup}")
        _check(
            self.skip_fade_end == 0
            or (self.audio_skip and 0 <= self.skip_fade_start < self.skip_fade_end),
            f"skip_fade needs audio_skip and 0 <= start < end, got {self.skip_fade_start}, "
            f"{self.skip_fade_end}",
        )


@dataclass(frozen=True)
class PoseConfig:
    """SAAS pose: VQ pose codebook + cross-modal next-token predictor, sampled."""

    codebook_size: int = 200  # pose codes
    d_code: int = 256  # pose-code width
    frames_per_token: int = 8  # frames one code decodes to (267 ms)
    commitment: float = 0.25  # commitment weight of the pose VQ
    codebook_update: str = "ema"  # "ema" or "loss"
    ema_decay: float = 0.99  # EMA decay
    hidden: int = 200  # predictor transformer width
    n_layers: int = 5  # predictor transformer layers
    n_heads: int = 10  # predictor attention heads
    d_ffn: int = 800  # predictor feed-forward width
    context_tokens: int = 4  # past pose tokens the predictor sees (4 x 8 = 32 frames)
    audio_frames: int = 8  # audio frames before a token's first frame that predict it
    temperature: float = 1.0  # sampling temperature (logits / T)
    top_k: int = 20  # sample among the k most likely codes
    # Causal smoothing of the decoded pose: `smoothing_poles` one-pole filters in series,
    # each y = a*y_prev + (1-a)*x with a = smoothing. One pole (the checkpoints made before
    # this switch) leaves a kink at every code boundary (jerk 5x the truth's); two poles
    # at 0.7 match the truth's jerk on val (docs/models.md).
    smoothing: float = 0.7
    smoothing_poles: int = 2
    # Training only: each past code the predictor sees is replaced by the start token with
    # this probability, so that it also learns to predict from the audio and the style.
    history_dropout: float = 0.0
    dropout: float = 0.1  # predictor dropout

    def __post_init__(self) -> None:
        _check_attention(self.hidden, self.n_heads, "PoseConfig")
        _check(self.codebook_size >= 2, "codebook_size must be >= 2")
        _check(self.codebook_update in CODEBOOK_UPDATES, f"codebook_update in {CODEBOOK_UPDATES}")
        _check(0.0 < self.ema_decay < 1.0, "ema_decay must be in (0, 1)")
        _check(self.frames_per_token >= 1 and self.context_tokens >= 1, "token sizes >= 1")
        _check(self.audio_frames >= 1, "audio_frames must be >= 1")
        _check(self.temperature > 0, "temperature must be > 0")
        _check(
            1 <= self.top_k <= self.codebook_size,
            f"top_k must be in [1, {self.codebook_size}], got {self.top_k}",
        )
        _check(0.0 <= self.smoothing < 1.0, "smoothing must be in [0, 1)")
        _check(0.0 <= self.history_dropout < 1.0, "history_dropout must be in [0, 1)")
        _check(self.smoothing_poles in (1, 2), f"smoothing_poles must be 1 or 2, got "
               f"{self.smoothing_poles}")  # fmt: skip

    @property
    def start_token(self) -> int:
        """Id of the 'no pose yet' token that fills the history at the start (not a code)."""
        return self.codebook_size


@dataclass(frozen=True)
class SAASConfig:
    """SAAS (Tan et al. 2024) adapted to ARKit-52 + 6-DoF pose."""

    motion: MotionSpec = field(default_factory=MotionSpec)  # output / style-clip space
    # The SadTalker-style front end: one 16 x 80 log-mel window per frame, no extra window.
    content: ContentConfig = field(default_factory=lambda: ContentConfig("mel", window=0))
    style: StyleVQConfig = field(default_factory=StyleVQConfig)  # style extraction
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)  # expression
    pose: PoseConfig = field(default_factory=PoseConfig)  # head pose

    def __post_init__(self) -> None:
        _check(
            self.style.max_frames >= self.style.window_frames,
            "style.max_frames must hold at least one window",
        )

    @property
    def style_dim(self) -> int:
        return self.style.d_model  # 256

    @property
    def lookahead_frames(self) -> int:
        return self.content.lookahead_frames  # 0 with the mel front end's own 0.2 s window


MOUTH_INPUTS = ("blendshapes", "vertices")  # what the lip-sync discriminator's mouth side reads
# How the lip-sync discriminator is trained: "contrastive" (InfoNCE over the batch's windows,
# learned logit scale) or "bce" (the first recipe: BCE on (cos + 1) / 2, true vs one shifted
# window; on the 20-hour corpus it learned nothing, docs/training.md).
SYNC_LOSSES = ("contrastive", "bce")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The auxiliary networks of the losses: lip-sync, style and temporal discriminators."""

    mouth_input: str = "blendshapes"  # "blendshapes": lower-face weights; "vertices": rig mouth
    sync_frames: int = 5  # frames in one lip-sync window (167 ms)
    sync_dim: int = 128  # lip-sync embedding width (cosine similarity is taken here)
    point_channels: int = 64  # PointNet width per mouth vertex
    channels: int = 128  # width of the 1-D convolution stacks
    temporal_layers: int = 3  # stride-2 conv layers of the PatchGAN discriminators
    n_styles: int = 32  # classes of the style discriminator
    sync_loss: str = "contrastive"  # how the lip-sync D is trained (SYNC_LOSSES)
    # contrastive: same-utterance audio windows fewer frames than this from the true one
    # are not used as negatives (0 < |shift| < this); the logit scale starts here.
    sync_min_shift: int = 2
    sync_scale: float = 10.0
    # contrastive: Adam's learning rate for the lip-sync stage (the stage's TrainConfig.lr,
    # i.e. `--lr`, is the generator's); bce uses TrainConfig.lr as it always did.
    sync_lr: float = 1e-3
    # contrastive: a still mouth (the window's first frame held) is one more negative for
    # every audio window, so a frozen face does not pass as in sync with speech.
    sync_still: bool = True

    def __post_init__(self) -> None:
        _check(self.mouth_input in MOUTH_INPUTS, f"mouth_input must be one of {MOUTH_INPUTS}")
        _check(self.sync_loss in SYNC_LOSSES, f"sync_loss must be one of {SYNC_LOSSES}")
        _check(self.sync_min_shift >= 1, "sync_min_shift must be >= 1")
        _check(self.sync_scale > 0, "sync_scale must be > 0")
        _check(self.sync_lr > 0, "sync_lr must be > 0")
        _check(self.sync_frames >= 1, "sync_frames must be >= 1")
        for name in ("sync_dim", "point_channels", "channels", "temporal_layers"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1")
        _check(self.n_styles >= 2, "n_styles must be >= 2")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (StyleTalk's published values where it has one)."""

    rec_weight: float = 88.0  # lambda_rec
    l1_share: float = 0.1  # mu: L_rec = mu * L1 + (1 - mu) * (1 - SSIM)
    ssim_window: int = 11  # frames in the 1-D SSIM window
    pose_weight: float = 10.0  # L1 on pose (StyleTalk's regression head)
    triplet_weight: float = 1.0  # lambda_trip
    triplet_margin: float = 5.0  # margin of the triplet loss on style codes
    sync_weight: float = 1.0  # lambda_sync (needs a trained lip-sync discriminator)
    temporal_weight: float = 1.0  # lambda_tem (hinge GAN)
    style_weight: float = 1.0  # lambda_style (needs a trained style discriminator)
    vq_weight: float = 1.0  # weight of the VQ commitment/codebook loss
    class_weight: float = 1.0  # style classification (SAAS multi-task extraction)
    # The rig mouth loss (losses.RigMouthLoss, terms in mm) in SAAS's expression stage;
    # StyleTalk's trainer keeps its own weights (train_styletalk.RigLossConfig).
    rig_vertex_weight: float = 2.0  # x mean xyz L1 of the 40 lip-contour points, mm
    rig_gap_weight: float = 2.0  # x mean |inner-lip gap error|, mm, boosted where closed
    rig_closed_boost: float = 8.0  # the gap error weighs 1 + this on frames the truth is closed

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _check(value >= 0, f"{f.name} must be >= 0, got {value}")
        _check(0.0 <= self.l1_share <= 1.0, "l1_share must be in [0, 1]")
        _check(self.ssim_window >= 3 and self.ssim_window % 2 == 1, "ssim_window: odd >= 3")


# ---------------------------------------------------------------- presets


def styletalk_config(preset: str = "default", frontend: str = "phoneme") -> StyleTalkConfig:
    """The paper's sizes ("default"), a 2-core-CPU size ("small") or a test size ("tiny")."""
    _check(preset in PRESETS, f"preset must be one of {PRESETS}, got {preset!r}")
    _check(frontend in FRONTENDS, f"frontend must be one of {FRONTENDS}, got {frontend!r}")
    if preset == "default":
        return StyleTalkConfig(content=ContentConfig(frontend))
    if preset == "small":
        # Every frame is decoded from its own 11-frame window, so training cost is 11x a
        # per-frame model's: 64-d, 2 layers and no dropout (bernoulli alone took 17% of a
        # CPU step) keep a batch of 8 x 32 frames near 1 s on one core.
        content = ContentConfig(frontend, phoneme_dim=64, mel_channels=64, window=5)
        return StyleTalkConfig(
            content=content, d_model=64, n_heads=4, d_ffn=256, dropout=0.0, content_layers=2,
            style_layers=2, decoder_layers=2, n_experts=8, expert_hidden=32, pose_hidden=64,
        )  # fmt: skip
    content = ContentConfig(frontend, phoneme_dim=16, mel_channels=16, window=2)
    return StyleTalkConfig(
        content=content, d_model=32, n_heads=2, d_ffn=64, dropout=0.0, content_layers=1,
        style_layers=1, decoder_layers=1, max_style_frames=64, n_experts=4, expert_hidden=8,
        pose_hidden=32,
    )  # fmt: skip


def saas_config(preset: str = "default", frontend: str = "mel") -> SAASConfig:
    """The paper's sizes ("default"), a 2-core-CPU size ("small") or a test size ("tiny").

    With the phoneme front end the audio encoder reads a +-2 frame window (2 frames of
    look-ahead); the mel front end's 0.2 s window already spans neighbouring frames."""
    _check(preset in PRESETS, f"preset must be one of {PRESETS}, got {preset!r}")
    _check(frontend in FRONTENDS, f"frontend must be one of {FRONTENDS}, got {frontend!r}")
    window = 0 if frontend == "mel" else 2
    if preset == "default":
        return SAASConfig(content=ContentConfig(frontend, window=window))
    if preset == "small":
        return SAASConfig(
            content=ContentConfig(frontend, phoneme_dim=64, mel_channels=64, window=window),
            style=StyleVQConfig(d_model=128, n_heads=4, d_ffn=256, n_layers=2, decoder_layers=1),
            expression=ExpressionConfig(d_audio=128, hyper_hidden=128, decoder_hidden=128),
            pose=PoseConfig(d_code=128, hidden=128, n_layers=3, n_heads=4, d_ffn=256),
        )
    return SAASConfig(
        content=ContentConfig(frontend, phoneme_dim=16, mel_channels=16, window=window),
        style=StyleVQConfig(
            d_model=32, n_heads=2, d_ffn=64, n_layers=1, decoder_layers=1, window_frames=16,
            frames_per_token=4, max_frames=64, codebook_size=16, n_styles=4, dropout=0.0,
        ),
        expression=ExpressionConfig(
            d_audio=32, canonical_layers=2, canonical_hidden=16, style_layers=4, style_hidden=16,
            hyper_layers=(1, 2), hyper_rank=2, hyper_hidden=32, decoder_hidden=32,
        ),
        pose=PoseConfig(
            codebook_size=16, d_code=32, frames_per_token=4, hidden=32, n_layers=1, n_heads=2,
            d_ffn=64, context_tokens=2, audio_frames=4, top_k=8, dropout=0.0,
        ),
    )  # fmt: skip


# ---------------------------------------------------------------- JSON round trip

CONFIG_TYPES: dict[str, type] = {
    "StyleTalkConfig": StyleTalkConfig,
    "SAASConfig": SAASConfig,
    "DiscriminatorConfig": DiscriminatorConfig,
    "LossConfig": LossConfig,
}


def config_to_dict(config: object) -> dict:
    """Plain-JSON form of a config dataclass (tuples become lists)."""
    assert dataclasses.is_dataclass(config) and not isinstance(config, type)
    return {"type": type(config).__name__, "fields": _to_plain(config)}


def _to_plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


# Fields added after checkpoints had shipped, with the value that reproduces how those
# checkpoints were made: a saved config that lacks one of these reads as that value (any
# other missing key is still an error).
ADDED_FIELDS: dict[tuple[str, str], object] = {
    ("StyleTalkConfig", "pose_smoothing"): 0.0,
    ("StyleTalkConfig", "expert_anneal_steps"): 0,
    ("StyleTalkConfig", "expert_temperature_start"): 30.0,
    ("StyleVQConfig", "codebook"): True,
    ("ExpressionConfig", "hyper_scale"): None,
    ("ExpressionConfig", "audio_norm"): False,
    ("ExpressionConfig", "style_norm"): False,
    ("ExpressionConfig", "style_warmup"): 0,
    ("ExpressionConfig", "audio_skip"): False,
    ("ExpressionConfig", "skip_fade_start"): 0,
    ("ExpressionConfig", "skip_fade_end"): 0,
    ("PoseConfig", "smoothing_poles"): 1,
    ("PoseConfig", "history_dropout"): 0.0,
}


def config_from_dict(data: dict, known: dict[str, type] | None = None) -> object:
    """Inverse of config_to_dict; raises FormatError naming any unknown or missing key
    (except the ADDED_FIELDS of older checkpoints, which take their old behaviour).

    known: the config classes accepted by name (default CONFIG_TYPES)."""
    known = CONFIG_TYPES if known is None else known
    if not isinstance(data, dict) or "type" not in data or "fields" not in data:
        raise FormatError(f"a config needs keys 'type' and 'fields', got {data!r:.200}")
    cls = known.get(data["type"])
    if cls is None:
        raise FormatError(f"unknown config type {data['type']!r}; known: {sorted(known)}")
    try:
        return _from_plain(cls, data["fields"], data["type"])
    except InputError as e:
        raise FormatError(f"invalid {data['type']}: {e}") from e


def _from_plain(cls: type, values: object, where: str) -> object:
    if not isinstance(values, dict):
        raise FormatError(f"{where}: expected an object, got {values!r:.100}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    added = {n: v for (c, n), v in ADDED_FIELDS.items() if c == cls.__name__ and n not in values}
    values = {**values, **added}
    unknown = sorted(set(values) - set(names))
    missing = sorted(set(names) - set(values))
    if unknown or missing:
        raise FormatError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    kwargs = {n: _convert(hints[n], values[n], f"{where}.{n}") for n in names}
    return cls(**kwargs)


def _convert(hint: object, value: object, where: str) -> object:
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise FormatError(f"{where}: expected a list, got {value!r:.100}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_convert(item, v, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = hint if isinstance(hint, type) else None
    if isinstance(hint, types.UnionType) or expected is None:
        return value
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise FormatError(f"{where}: expected {expected.__name__}, got {value!r:.100}")
    return value
