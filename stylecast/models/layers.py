"""Building blocks shared by StyleTalk and SAAS.

Everything here is export-friendly: no tensor-valued Python control flow, attention written
out with reshapes that follow the input's shape, and sampling driven by a uniform number
passed in rather than drawn inside.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from stylecast.models.config import ContentConfig

MASK_VALUE = -1e9  # additive attention score for padded keys (finite: no NaN rows)


def sinusoidal_encoding(length: int, dim: int) -> Tensor:
    """(length, dim) float32 sine/cosine positional encoding (Vaswani et al.)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


class PositionalEncoding(nn.Module):
    """Adds a fixed sinusoidal encoding: x (B, L, D) -> (B, L, D), L <= max_len."""

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        self.register_buffer("table", sinusoidal_encoding(max_len, dim), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.table[: x.shape[1]]


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over `memory` for each query; keys can be padded."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        assert dim % n_heads == 0
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, memory: Tensor, key_pad: Tensor | None = None) -> Tensor:
        """query (B, Lq, D), memory (B, Lk, D), key_pad (B, Lk) bool, True = padding."""
        h = self.n_heads
        q = rearrange(self.q(query), "b l (h d) -> b h l d", h=h)
        k = rearrange(self.k(memory), "b l (h d) -> b h l d", h=h)
        v = rearrange(self.v(memory), "b l (h d) -> b h l d", h=h)
        scores = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5)  # (B, H, Lq, Lk)
        if key_pad is not None:
            scores = scores.masked_fill(key_pad[:, None, None, :], MASK_VALUE)
        attn = self.dropout(scores.softmax(dim=-1))
        return self.out(rearrange(attn @ v, "b h l d -> b l (h d)"))


class TransformerLayer(nn.Module):
    """Post-norm encoder layer: self-attention then a 2-layer ReLU feed-forward."""

    def __init__(self, dim: int, n_heads: int, d_ffn: int, dropout: float) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(dim, n_heads, dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, d_ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ffn, dim)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_pad: Tensor | None = None) -> Tensor:
        """x (B, L, D), key_pad (B, L) bool -> (B, L, D)."""
        x = self.norm1(x + self.dropout(self.attn(x, x, key_pad)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class TransformerEncoder(nn.Module):
    """A stack of TransformerLayer."""

    def __init__(self, dim: int, n_heads: int, d_ffn: int, n_layers: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(dim, n_heads, d_ffn, dropout) for _ in range(n_layers)
        )

    def forward(self, x: Tensor, key_pad: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, key_pad)
        return x


class AttentionPooling(nn.Module):
    """Self-attention pooling (Safari et al. 2020): softmax(w . H) H^T over valid frames."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, h: Tensor, valid: Tensor | None = None) -> Tensor:
        """h (B, L, D), valid (B, L) bool -> (B, D)."""
        scores = self.score(h)[..., 0]  # (B, L)
        if valid is not None:
            scores = scores.masked_fill(~valid, MASK_VALUE)
        weights = scores.softmax(dim=-1)
        return torch.einsum("bl,bld->bd", weights, h)


class DynamicLinear(nn.Module):
    """A linear layer whose kernel is a style-weighted mix of K expert kernels.

    pi = softmax(MLP(cond) / T) over K experts; W = sum_k pi_k W_k, b = sum_k pi_k b_k;
    y = x W^T + b. Mixing happens once per batch item, so a long x costs one matmul.
    """

    def __init__(
        self, d_in: int, d_out: int, d_cond: int, n_experts: int, temperature: float, hidden: int
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.weight = nn.Parameter(torch.empty(n_experts, d_out, d_in))
        self.bias = nn.Parameter(torch.empty(n_experts, d_out))
        bound = 1.0 / math.sqrt(d_in)
        nn.init.uniform_(self.weight, -bound, bound)  # as nn.Linear, per expert
        nn.init.uniform_(self.bias, -bound, bound)
        self.attention = nn.Sequential(
            nn.Linear(d_cond, hidden), nn.ReLU(), nn.Linear(hidden, n_experts)
        )

    def mixing_weights(self, cond: Tensor) -> Tensor:
        """cond (B, C) -> pi (B, K), each row summing to 1."""
        return (self.attention(cond) / self.temperature).softmax(dim=-1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x (B, N, d_in), cond (B, C) -> (B, N, d_out)."""
        pi = self.mixing_weights(cond)
        weight = torch.einsum("bk,koi->boi", pi, self.weight)  # (B, d_out, d_in)
        bias = pi @ self.bias  # (B, d_out)
        return torch.einsum("bni,boi->bno", x, weight) + bias[:, None, :]


# ---------------------------------------------------------------- vector quantisation


class VQOutput(NamedTuple):
    quantized: Tensor  # (..., D) codes, with straight-through gradients to the input
    indices: Tensor  # (...) int64 code indices
    loss: Tensor  # () commitment (+ codebook, when learnt by loss) loss
    perplexity: Tensor  # () exp(entropy) of code usage in this batch: 1 .. n_codes


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser (van den Oord et al. 2017) with a straight-through estimator.

    update="ema": the codebook is a buffer that follows the running mean of the vectors
    assigned to each code (training mode only); the loss is commitment * ||z - sg[q]||^2.
    update="loss": the codebook is a parameter and the loss adds ||sg[z] - q||^2.
    In training, the first batch initialises the codebook from its own vectors and, with
    EMA, codes that fall out of use are moved onto batch vectors.
    """

    def __init__(
        self, n_codes: int, dim: int, commitment: float, update: str, decay: float = 0.99
    ) -> None:
        super().__init__()
        assert update in ("ema", "loss")
        self.n_codes = n_codes
        self.commitment = commitment
        self.update = update
        self.decay = decay
        init = torch.randn(n_codes, dim)
        if update == "ema":
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_size", torch.ones(n_codes))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # 0 until the first training batch replaces the random codes by its own vectors
        # (random codes far from the encoder's outputs collapse onto one code).
        self.register_buffer("initialised", torch.zeros(()))

    def nearest(self, z: Tensor) -> Tensor:
        """z (..., D) -> (...) int64 index of the nearest code (squared L2)."""
        codebook = self.codebook
        dist = (
            (z * z).sum(-1, keepdim=True) - 2.0 * z @ codebook.t() + (codebook * codebook).sum(-1)
        )  # (..., N)
        return dist.argmin(dim=-1)

    def lookup(self, indices: Tensor) -> Tensor:
        """(...) int64 -> (..., D) codes."""
        return F.embedding(indices, self.codebook)

    def forward(self, z: Tensor, valid: Tensor | None = None) -> VQOutput:
        """z (..., D); valid (...) bool marks entries that count (padding does not)."""
        indices = self.nearest(z.detach())
        if valid is None:
            valid = torch.ones(indices.shape, dtype=torch.bool, device=z.device)
        weight = valid.to(z.dtype)[..., None]  # (..., 1)
        count = weight.sum().clamp(min=1.0)
        if self.training and not bool(self.initialised):
            self._init_from(z.detach(), valid)
            indices = self.nearest(z.detach())
        if self.training and self.update == "ema":
            self._ema_update(z.detach(), indices, weight)
            self._restart_dead(z.detach(), valid)
        quantized = self.lookup(indices)
        loss = self.commitment * (((z - quantized.detach()) ** 2) * weight).sum() / count
        if self.update == "loss":
            loss = loss + (((z.detach() - quantized) ** 2) * weight).sum() / count
        onehot = F.one_hot(indices, self.n_codes).to(z.dtype) * weight
        usage = onehot.reshape(-1, self.n_codes).sum(0) / count
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        quantized = z + (quantized - z).detach()  # straight-through
        return VQOutput(quantized, indices, loss, perplexity)

    @torch.no_grad()
    def _sample_vectors(self, z: Tensor, valid: Tensor, n: int) -> Tensor:
        """n rows drawn from the valid vectors of z (with replacement), slightly jittered."""
        pool = z.reshape(-1, z.shape[-1])[valid.reshape(-1)]
        if len(pool) == 0:
            return self.codebook[:n].clone()
        pick = torch.randint(0, len(pool), (n,), device=z.device)
        return pool[pick] + 0.01 * pool.std() * torch.randn(n, z.shape[-1], device=z.device)

    @torch.no_grad()
    def _init_from(self, z: Tensor, valid: Tensor) -> None:
        self.codebook.data.copy_(self._sample_vectors(z, valid, self.n_codes))
        if self.update == "ema":
            self.embed_sum.copy_(self.codebook)
            self.cluster_size.fill_(1.0)
        self.initialised.fill_(1.0)

    @torch.no_grad()
    def _restart_dead(self, z: Tensor, valid: Tensor, threshold: float = 1e-3) -> None:
        """Codes whose running use fell below `threshold` move onto batch vectors."""
        dead = self.cluster_size < threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        fresh = self._sample_vectors(z, valid, n_dead)
        self.codebook[dead] = fresh
        self.embed_sum[dead] = fresh
        self.cluster_size[dead] = 1.0

    @torch.no_grad()
    def _ema_update(self, z: Tensor, indices: Tensor, weight: Tensor) -> None:
        flat_z = z.reshape(-1, z.shape[-1])
        onehot = F.one_hot(indices.reshape(-1), self.n_codes).to(z.dtype)
        onehot = onehot * weight.reshape(-1, 1)
        d = self.decay
        self.cluster_size.mul_(d).add_(onehot.sum(0), alpha=1 - d)
        self.embed_sum.mul_(d).add_(onehot.t() @ flat_z, alpha=1 - d)
        total = self.cluster_size.sum()
        eps = 1e-5
        smoothed = (self.cluster_size + eps) / (total + self.n_codes * eps) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])


def sample_top_k(logits: Tensor, uniform: Tensor, temperature: float, top_k: int) -> Tensor:
    """Draw one index per row from softmax(logits / T) restricted to the top k, by inverse
    CDF of `uniform`: logits (B, N), uniform (B,) in [0, 1) -> (B,) int64.

    Deterministic given `uniform`, so PyTorch and ONNX Runtime draw the same codes."""
    values, order = torch.topk(logits / temperature, top_k, dim=-1)  # (B, k), descending
    cdf = values.softmax(dim=-1).cumsum(dim=-1)  # (B, k)
    rank = (cdf < uniform[:, None]).sum(dim=-1).clamp(max=top_k - 1)  # (B,)
    return torch.gather(order, 1, rank[:, None])[:, 0]


# ---------------------------------------------------------------- HyperStyle LSTM


class ModulatedLSTM(nn.Module):
    """A multi-layer LSTM with explicit weights (torch's gate order i, f, g, o) whose
    layers can take multiplicative offsets W * (1 + Delta) per batch item.

    With every Delta zero it computes exactly what torch.nn.LSTM computes."""

    def __init__(self, d_in: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.n_layers = n_layers
        sizes = [d_in] + [hidden] * (n_layers - 1)
        bound = 1.0 / math.sqrt(hidden)
        self.w_ih = nn.ParameterList(
            nn.Parameter(torch.empty(4 * hidden, s).uniform_(-bound, bound)) for s in sizes
        )
        self.w_hh = nn.ParameterList(
            nn.Parameter(torch.empty(4 * hidden, hidden).uniform_(-bound, bound)) for _ in sizes
        )
        self.bias = nn.ParameterList(
            nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound)) for _ in sizes
        )

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(4H, d_in of the layer) per layer; the hidden weight is always (4H, H)."""
        return [tuple(w.shape) for w in self.w_ih]

    def forward(
        self,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        deltas: dict[int, tuple[Tensor, Tensor]],
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, d_in); h0, c0 (L, B, H); deltas {layer: (B, 4H, d_in), (B, 4H, H)}.

        Returns y (B, T, H), h (L, B, H), c (L, B, H)."""
        hs, cs = [], []
        for layer in range(self.n_layers):
            w_ih, w_hh = self.w_ih[layer], self.w_hh[layer]
            if layer in deltas:
                d_ih, d_hh = deltas[layer]
                x_proj = torch.einsum("bti,bgi->btg", x, w_ih * (1.0 + d_ih))
                w_hh_b = w_hh * (1.0 + d_hh)  # (B, 4H, H)
            else:
                x_proj = x @ w_ih.t()
                w_hh_b = w_hh.expand(x.shape[0], -1, -1)
            x_proj = x_proj + self.bias[layer]  # (B, T, 4H)
            h, c = h0[layer], c0[layer]
            outputs = []
            for t in range(x.shape[1]):
                gates = x_proj[:, t] + torch.einsum("bh,bgh->bg", h, w_hh_b)
                i, f, g, o = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
            hs.append(h)
            cs.append(c)
        return x, torch.stack(hs), torch.stack(cs)


class HyperStyle(nn.Module):
    """Style code -> low-rank multiplicative weight offsets for chosen LSTM layers.

    Delta = scale * tanh(A @ B^T / rank / scale) for the input and the hidden weight of each
    layer, so |Delta| < scale and W * (1 + Delta) stays a modulation of W (never a sign flip
    or a 10x weight when scale < 1); near zero Delta ~ A @ B^T / rank. scale None leaves
    Delta unbounded (checkpoints made before the bound). B's head starts at zero, so
    Delta = 0 at initialisation (the branch starts as a plain LSTM) while A still passes
    gradients to it."""

    def __init__(
        self,
        d_style: int,
        hidden: int,
        shapes: dict[int, tuple[int, int, int]],
        rank: int,
        scale: float | None = None,
    ) -> None:
        """shapes {layer: (4H, d_in, H)}; scale: bound on |Delta| (None: unbounded)."""
        super().__init__()
        assert scale is None or scale > 0, f"scale must be > 0 or None, got {scale}"
        self.shapes = dict(shapes)
        self.rank = rank
        self.scale = scale
        rows = sum(2 * g for g, _, _ in self.shapes.values())  # rows of A, ih and hh
        cols = sum(d_in + h for _, d_in, h in self.shapes.values())  # rows of B, ih and hh
        self.trunk = nn.Sequential(nn.Linear(d_style, hidden), nn.ReLU())
        self.head_a = nn.Linear(hidden, rows * rank)
        self.head_b = nn.Linear(hidden, cols * rank)
        nn.init.zeros_(self.head_b.weight)
        nn.init.zeros_(self.head_b.bias)

    def forward(self, style: Tensor) -> dict[int, tuple[Tensor, Tensor]]:
        """style (B, S) -> {layer: (Delta_ih (B, 4H, d_in), Delta_hh (B, 4H, H))}."""
        trunk = self.trunk(style)
        a = rearrange(self.head_a(trunk), "b (n r) -> b n r", r=self.rank)
        b = rearrange(self.head_b(trunk), "b (n r) -> b n r", r=self.rank)
        out: dict[int, tuple[Tensor, Tensor]] = {}
        ia = ib = 0
        for layer, (g, d_in, h) in self.shapes.items():
            deltas = []
            for cols in (d_in, h):
                a_part = a[:, ia : ia + g]  # (B, 4H, r)
                b_part = b[:, ib : ib + cols]  # (B, cols, r)
                delta = a_part @ b_part.transpose(1, 2) / self.rank
                if self.scale is not None:
                    delta = self.scale * torch.tanh(delta / self.scale)
                deltas.append(delta)
                ia += g
                ib += cols
            out[layer] = (deltas[0], deltas[1])
        return out


# ---------------------------------------------------------------- content front ends


class FrameEncoder(nn.Module):
    """One video frame's input -> a d_out vector.

    phoneme: ids (...) int64 -> embedding -> linear. mel: (..., mel_frames, n_mels) log-mel
    -> 3 convolutions over mel time (the last two stride 2) -> linear."""

    def __init__(self, cfg: ContentConfig, d_out: int) -> None:
        super().__init__()
        self.frontend = cfg.frontend
        if cfg.frontend == "phoneme":
            self.embed = nn.Embedding(cfg.n_phonemes, cfg.phoneme_dim)
            self.proj = nn.Linear(cfg.phoneme_dim, d_out)
        else:
            ch = cfg.mel_channels
            self.conv = nn.Sequential(
                nn.Conv1d(cfg.n_mels, ch, 3, padding=1), nn.ReLU(),
                nn.Conv1d(ch, ch, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv1d(ch, ch, 3, stride=2, padding=1), nn.ReLU(),
            )  # fmt: skip
            length = cfg.mel_frames
            for _ in range(2):
                length = (length - 1) // 2 + 1  # 16 mel frames -> 8 -> 4
            self.proj = nn.Linear(ch * length, d_out)

    def forward(self, x: Tensor) -> Tensor:
        if self.frontend == "phoneme":
            return self.proj(self.embed(x))
        lead = x.shape[:-2]
        mel = rearrange(x.reshape(-1, x.shape[-2], x.shape[-1]), "n f m -> n m f")
        feat = self.conv(mel).flatten(1)  # (N, C * F')
        return self.proj(feat).reshape(*lead, -1)


def feature_shape(cfg: ContentConfig) -> tuple[int, ...]:
    """Per-frame feature shape after the batch: () for phoneme ids, (16, 80) for mel."""
    return () if cfg.frontend == "phoneme" else (cfg.mel_frames, cfg.n_mels)


def padding_frames(cfg: ContentConfig, batch: int, frames: int, device=None) -> Tensor:
    """(batch, frames, *feature_shape) of the padding input (SIL ids or silent log-mel)."""
    if cfg.frontend == "phoneme":
        return torch.full((batch, frames), cfg.phoneme_pad_id, dtype=torch.long, device=device)
    shape = (batch, frames, cfg.mel_frames, cfg.n_mels)
    return torch.full(shape, cfg.mel_pad_value, dtype=torch.float32, device=device)


def pad_sequence_ends(features: Tensor, cfg: ContentConfig) -> Tensor:
    """(B, T, ...) -> (B, T + 2w, ...) with w padding frames on each side."""
    w = cfg.window
    if w == 0:
        return features
    pad = padding_frames(cfg, features.shape[0], w, features.device).to(features.dtype)
    return torch.cat([pad, features, pad], dim=1)


def sliding_windows(x: Tensor, size: int) -> Tensor:
    """(B, T + size - 1, ...) -> (B, T, size, ...): every window of `size` frames."""
    windows = x.unfold(1, size, 1)  # (B, T, ..., size)
    return windows.movedim(-1, 2)
