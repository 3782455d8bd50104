"""The VQD-SR vector-quantized degradation model (multi-scale VQGAN), pure torch.

Structure (as released): a shared trunk (``conv_in``, ``top.encode_0..2``), a top branch at
1/8 with two attention stages, a middle branch at 1/4 and a bottom branch at 1/2. All three
branches are quantized against ONE codebook (``top.quantize.embedding``); the middle and bottom
decoder outputs are added into the top decoder at 1/4 and 1/2.

Module and parameter names follow the official release, so an official Lightning checkpoint's
``state_dict`` (prefix ``endecoder.``) maps onto these modules by name; the weights layer
(:mod:`vsvqdsr.weights.degrader`) does the prefix stripping and drops the unused per-branch
codebooks the official multi-scale model carries.

Images are ``B,3,H,W``. The networks work on [-1, 1]; :meth:`MultiScaleVQGAN.degrade` takes and
returns [0, 1].
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "VQGANConfig", "PAPER_CONFIG", "LITE_CONFIG", "CONFIGS", "VectorQuantizer", "ResnetBlock",
    "BasicBlock", "AttnBlock", "Downsample", "Upsample", "TopVQGAN", "MultiScaleVQGAN", "sample_k",
    "K_MAX", "TOPK_LIMIT", "DegradeModule", "ChannelGroupNorm",
]

#: Largest k used by the paper and the released code (top-k over the 50 nearest entries).
K_MAX = 50
#: Largest constant K of a TopK layer TensorRT accepts (its ONNX TopK support); the exported
#: degrader graph never asks for more.
TOPK_LIMIT = 3840


@dataclass(frozen=True)
class VQGANConfig:
    """Channel configuration. ``PAPER_CONFIG`` is the released configuration, the same for both stages.

    Attributes:
        ch: base channels; level channels are ``ch * ch_mult[i]``.
        ch_mult: five multipliers (f1, f2, f4, f8 before and after the 1/8 widening conv).
        num_res_blocks: ResnetBlocks per BasicBlock.
        embed_dim: code vector size.
        n_embed: codebook entries (shared by all branches).
        norm_groups: GroupNorm groups (32 in the paper; every channel count must divide by it).
        beta: codebook-term weight of the legacy VQ loss.
    """

    ch: int = 128
    ch_mult: tuple[int, int, int, int, int] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    embed_dim: int = 256
    n_embed: int = 1024
    norm_groups: int = 32
    beta: float = 0.25

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ch_mult"] = list(self.ch_mult)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VQGANConfig":
        d = dict(d)
        d["ch_mult"] = tuple(int(x) for x in d["ch_mult"])
        return cls(**d)


PAPER_CONFIG = VQGANConfig()
#: Same structure at 1/8 of the width: about 1/64 of the compute (~0.2 M MAC per pixel).
LITE_CONFIG = VQGANConfig(ch=16, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, embed_dim=64, n_embed=256,
                          norm_groups=8)
CONFIGS: dict[str, VQGANConfig] = {"paper": PAPER_CONFIG, "lite": LITE_CONFIG}


def swish(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


class ResnetBlock(nn.Module):
    """GN, swish, conv3x3, GN, swish, conv3x3, plus identity (cin == cout always here)."""

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.norm1 = _norm(c, groups)
        self.conv1 = _conv3(c, c)
        self.norm2 = _norm(c, groups)
        self.conv2 = _conv3(c, c)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        return x + h


class BasicBlock(nn.Module):
    """``n`` ResnetBlocks in sequence (module name ``blocks`` as in the release)."""

    def __init__(self, c: int, n: int, groups: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResnetBlock(c, groups) for _ in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class AttnBlock(nn.Module):
    """Single-head softmax self-attention over all positions, 1x1 q/k/v/proj_out, residual.

    Memory stays bounded for large maps: queries are processed in chunks through
    ``scaled_dot_product_attention`` (whose CPU/GPU kernels do not materialise the full matrix).
    """

    #: Queries per chunk; bounds the score matrix to ``chunk x h*w`` even on the math fallback.
    query_chunk: int = 4096

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(c, groups)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        hn = self.norm(x)
        q = self.q(hn).flatten(2).transpose(1, 2).unsqueeze(1)  # b,1,hw,c
        k = self.k(hn).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.v(hn).flatten(2).transpose(1, 2).unsqueeze(1)
        n = h * w
        if n <= self.query_chunk:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = torch.cat([F.scaled_dot_product_attention(q[:, :, i:i + self.query_chunk], k, v)
                           for i in range(0, n, self.query_chunk)], dim=2)
        o = o.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(o)


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then a stride-2 3x3 conv (changes channels too)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 2, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """3x3 conv to ``4*cout`` channels, then PixelShuffle(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv3(cin, 4 * cout)
        self.pixelshuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pixelshuffle(self.conv(x))


class VectorQuantizer(nn.Module):
    """Nearest-entry (squared L2) quantizer with straight-through gradients and stochastic top-k.

    Loss (legacy taming form, paper Eq. 4): ``mean((sg[e]-z)^2) + beta * mean((e-sg[z])^2)``,
    i.e. commitment weight 1 and codebook weight ``beta``.
    """

    #: Tokens per distance chunk (bounds the ``tokens x n_embed`` distance matrix).
    token_chunk: int = 65536

    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.n_embed, self.embed_dim, self.beta = n_embed, embed_dim, beta
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def distances(self, zf: Tensor) -> Tensor:
        """Squared L2 distances ``|z|^2 + |e|^2 - 2 z.e`` of ``N,D`` vectors to every entry (``N,n_embed``)."""
        e = self.embedding.weight
        return zf.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2.0 * zf @ e.t()

    def lookup(self, z: Tensor, k: Tensor | None = None) -> Tensor:
        """Indices (``B,H,W``, int64) of the k-th nearest entry per token of ``z`` (``B,D,H,W``).

        ``k`` is ``None`` (nearest) or an int64 tensor of shape ``(B,)`` with 1-based ranks in
        ``1..n_embed``; sample ``b`` uses rank ``k[b]`` for all its tokens. One top-K search with
        ``K = max(k)`` is done per chunk, then a per-token gather.
        """
        b, d, h, w = z.shape
        zf = z.permute(0, 2, 3, 1).reshape(-1, d)
        if k is None:
            kmax = 1
            col = None
        else:
            k = torch.as_tensor(k, dtype=torch.int64, device=z.device).reshape(-1)
            if k.numel() != b:
                raise ValueError(f"VectorQuantizer.lookup: k has {k.numel()} entries for a batch of {b}")
            if bool((k < 1).any()) or bool((k > self.n_embed).any()):
                raise ValueError(f"VectorQuantizer.lookup: k must lie in 1..{self.n_embed}, got {k.tolist()}")
            kmax = int(k.max())
            col = (k - 1).repeat_interleave(h * w)
        out = []
        for s in range(0, zf.shape[0], self.token_chunk):
            dist = self.distances(zf[s:s + self.token_chunk])
            if kmax == 1:
                out.append(dist.argmin(1))
            else:
                idx = dist.topk(kmax, dim=1, largest=False, sorted=True).indices
                out.append(idx.gather(1, col[s:s + self.token_chunk, None]).squeeze(1))
        return torch.cat(out).reshape(b, h, w)

    def forward(self, z: Tensor, k: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Quantize ``z`` (``B,D,H,W``). Returns ``(z_q with straight-through grad, vq loss, indices)``."""
        idx = self.lookup(z.detach(), k)
        zq = self.embedding(idx).permute(0, 3, 1, 2)
        loss = F.mse_loss(z, zq.detach()) + self.beta * F.mse_loss(zq, z.detach())
        zq = z + (zq - z).detach()
        return zq, loss, idx


def _down_stage(cin: int, cout: int, n: int, g: int) -> nn.Sequential:
    return nn.Sequential(Downsample(cin, cout), BasicBlock(cout, n, g))


def _conv_stage(cin: int, cout: int, n: int, g: int) -> nn.Sequential:
    return nn.Sequential(_conv3(cin, cout), BasicBlock(cout, n, g))


def _stage_conv(cin: int, cout: int, n: int, g: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, n, g), _conv3(cin, cout))


def _attn_stage(c: int, g: int) -> nn.Sequential:
    return nn.Sequential(AttnBlock(c, g), ResnetBlock(c, g))


def _head(c: int, e: int, g: int) -> nn.Sequential:
    return nn.Sequential(_norm(c, g), _conv3(c, e))


class TopVQGAN(nn.Module):
    """Stage-1 model: shared trunk + top branch (f = 8) only; GN -> swish -> conv_out."""

    #: Whether the output head applies swish before ``conv_out`` (stage 1: yes; multi-scale: no).
    swish_out: bool = True

    def __init__(self, config: VQGANConfig = PAPER_CONFIG) -> None:
        super().__init__()
        self.config = cfg = config
        c = [cfg.ch * m for m in cfg.ch_mult]
        n, g, e = cfg.num_res_blocks, cfg.norm_groups, cfg.embed_dim
        self.conv_in = _conv3(3, cfg.ch)
        t = self.top = nn.Module()
        t.encode_0 = BasicBlock(c[0], n, g)
        t.encode_1 = _down_stage(c[0], c[1], n, g)
        t.encode_2 = _down_stage(c[1], c[2], n, g)
        t.encode_3 = _down_stage(c[2], c[3], n, g)
        t.encode_4 = _conv_stage(c[3], c[4], n, g)
        t.encode_attn_1 = _attn_stage(c[4], g)
        t.encode_attn_2 = _attn_stage(c[4], g)
        t.encode_out = _head(c[4], e, g)
        t.quantize = VectorQuantizer(cfg.n_embed, e, cfg.beta)
        t.decode_convin = _conv3(e, c[4])
        t.decode_atten_1 = _attn_stage(c[4], g)
        t.decode_atten_2 = _attn_stage(c[4], g)
        t.decode_0 = _conv_stage(c[4], c[3], n, g)
        t.decode_1 = nn.Sequential(BasicBlock(c[3], n, g), Upsample(c[3], c[2]))
        t.decode_2 = nn.Sequential(BasicBlock(c[2], n, g), Upsample(c[2], c[1]))
        t.decode_3 = nn.Sequential(BasicBlock(c[1], n, g), Upsample(c[1], c[0]))
        t.decode_4 = BasicBlock(c[0], n, g)
        self.norm_out = _norm(c[0], g)
        self.conv_out = _conv3(c[0], 3)

    @property
    def codebook(self) -> VectorQuantizer:
        return self.top.quantize

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Shared features: (f2 output of encode_1, f4 output of encode_2)."""
        t = self.top
        f2 = t.encode_1(t.encode_0(self.conv_in(x)))
        return f2, t.encode_2(f2)

    def encode_top(self, f4: Tensor) -> Tensor:
        t = self.top
        return t.encode_out(t.encode_attn_2(t.encode_attn_1(t.encode_4(t.encode_3(f4)))))

    def decode_top_to_f4(self, zq: Tensor) -> Tensor:
        t = self.top
        return t.decode_1(t.decode_0(t.decode_atten_2(t.decode_atten_1(t.decode_convin(zq)))))

    def head(self, h: Tensor) -> Tensor:
        h = self.norm_out(h)
        if self.swish_out:
            h = swish(h)
        return self.conv_out(h)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` in [-1, 1], H and W multiples of 8. Returns (reconstruction, codebook loss)."""
        _, f4 = self.trunk(x)
        zq, loss, _ = self.codebook(self.encode_top(f4))
        h = self.decode_top_to_f4(zq)
        h = self.top.decode_4(self.top.decode_3(self.top.decode_2(h)))
        return self.head(h), loss


class MultiScaleVQGAN(TopVQGAN):
    """Stage-2 model: top (f8), middle (f4) and bottom (f2) branches, one shared codebook.

    The output head has NO swish before ``conv_out`` (faithful to the release: its multi-scale
    model computes the swish and then ignores it; the stage-1 top-only model applies it).
    """

    swish_out = False

    def __init__(self, config: VQGANConfig = PAPER_CONFIG) -> None:
        super().__init__(config)
        cfg = config
        c = [cfg.ch * m for m in cfg.ch_mult]
        n, g, e = cfg.num_res_blocks, cfg.norm_groups, cfg.embed_dim
        m = self.mid = nn.Module()
        m.encode_3 = _conv_stage(c[2], c[3], n, g)
        m.encode_4 = _conv_stage(c[3], c[4], n, g)
        m.encode_out = _head(c[4], e, g)
        m.decode_convin = _conv3(e, c[4])
        m.decode_0 = _stage_conv(c[4], c[3], n, g)
        m.decode_1 = _stage_conv(c[3], c[2], n, g)
        bt = self.bot = nn.Module()
        bt.encode_2 = _conv_stage(c[1], c[2], n, g)
        bt.encode_3 = _conv_stage(c[2], c[3], n, g)
        bt.encode_4 = _conv_stage(c[3], c[4], n, g)
        bt.encode_out = _head(c[4], e, g)
        bt.decode_convin = _conv3(e, c[4])
        bt.decode_0 = _stage_conv(c[4], c[3], n, g)
        bt.decode_1 = _stage_conv(c[3], c[2], n, g)
        bt.decode_2 = _stage_conv(c[2], c[1], n, g)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Continuous codes (top at 1/8, middle at 1/4, bottom at 1/2) of ``x`` in [-1, 1]."""
        f2, f4 = self.trunk(x)
        m, bt = self.mid, self.bot
        z_mid = m.encode_out(m.encode_4(m.encode_3(f4)))
        z_bot = bt.encode_out(bt.encode_4(bt.encode_3(bt.encode_2(f2))))
        return self.encode_top(f4), z_mid, z_bot

    def decode(self, q_top: Tensor, q_mid: Tensor, q_bot: Tensor) -> Tensor:
        """Decode quantized codes to an image in (roughly) [-1, 1]."""
        m, bt, t = self.mid, self.bot, self.top
        h_mid = m.decode_1(m.decode_0(m.decode_convin(q_mid)))
        h_bot = bt.decode_2(bt.decode_1(bt.decode_0(bt.decode_convin(q_bot))))
        h = self.decode_top_to_f4(q_top) + h_mid
        h = t.decode_2(h) + h_bot
        return self.head(t.decode_4(t.decode_3(h)))

    def forward(self, x: Tensor, k_top: Tensor | None = None, k_mid: Tensor | None = None,
                k_bottom: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` in [-1, 1] (H, W multiples of 8). Returns (output, mean codebook loss of the 3 branches).

        ``k_*`` are ``None`` (nearest) or int64 ``(B,)`` 1-based ranks for stochastic top-k.
        """
        z_top, z_mid, z_bot = self.encode(x)
        qt, lt, _ = self.codebook(z_top, k_top)
        qm, lm, _ = self.codebook(z_mid, k_mid)
        qb, lb, _ = self.codebook(z_bot, k_bottom)
        return self.decode(qt, qm, qb), (lt + lm + lb) / 3.0

    @torch.no_grad()
    def degrade(self, lr: Tensor, k_top: Tensor, k_mid: Tensor, k_bottom: Tensor,
                max_pixels: int = 1920 * 1088, tile: int = 512, overlap: int = 32) -> Tensor:
        """Transfer the learned degradation onto clean frames.

        Args:
            lr: ``B,3,H,W`` RGB in [0, 1] (any H, W >= 1; padded by reflection to multiples of 8
                and cropped back).
            k_top, k_mid, k_bottom: int64 tensors of shape ``(B,)``, 1-based ranks (1 = nearest entry).
            max_pixels: frames with more pixels are processed in overlapping tiles (memory bound;
                the top branch's attention then sees one tile at a time).
            tile, overlap: tile edge and overlap in pixels (multiples of 8).
        Returns:
            ``B,3,H,W`` in [0, 1], same dtype and device as ``lr``.
        """
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"MultiScaleVQGAN.degrade: lr must be B,3,H,W, got {tuple(lr.shape)}")
        b, _, h, w = lr.shape
        ks = []
        for name, k in (("k_top", k_top), ("k_mid", k_mid), ("k_bottom", k_bottom)):
            k = torch.as_tensor(k, dtype=torch.int64).reshape(-1).to(lr.device)
            if k.numel() != b:
                raise ValueError(f"MultiScaleVQGAN.degrade: {name} must have shape ({b},), got {tuple(k.shape)}")
            ks.append(k)
        p = next(self.parameters())
        x = lr.to(p.dtype) * 2.0 - 1.0
        if h * w <= max_pixels:
            y = self._degrade_padded(x, ks)
        else:
            y = self._degrade_tiled(x, ks, tile, overlap)
        return ((y + 1.0) * 0.5).clamp_(0.0, 1.0).to(lr.dtype)

    def _degrade_padded(self, x: Tensor, ks: Sequence[Tensor]) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        y, _ = self.forward(x, *ks)
        return y[..., :h, :w]

    def _degrade_tiled(self, x: Tensor, ks: Sequence[Tensor], tile: int, overlap: int) -> Tensor:
        b, _, h, w = x.shape
        tile = max(64, tile - tile % 8)
        overlap = min(max(0, overlap - overlap % 8), tile // 4)
        step = tile - 2 * overlap
        out = torch.empty_like(x)
        for y0 in range(0, h, step):
            for x0 in range(0, w, step):
                y1, x1 = min(y0 + step, h), min(x0 + step, w)
                # input window: the core plus an overlap margin on every side, clipped to the frame
                a0, b0 = max(0, y0 - overlap), max(0, x0 - overlap)
                a1, b1 = min(h, y1 + overlap), min(w, x1 + overlap)
                res = self._degrade_padded(x[..., a0:a1, b0:b1], ks)
                out[..., y0:y1, x0:x1] = res[..., y0 - a0:y1 - a0, x0 - b0:x1 - b0]
        return out


class ChannelGroupNorm(nn.Module):
    """``nn.GroupNorm`` computed from per-channel spatial means (the same function up to float
    rounding): the image tensor is never reshaped into groups, only the ``B,C,1,1`` statistics
    are (with static channel counts), so graph compilers keep their blocked channel layout
    (OpenVINO otherwise reorders every activation twice per normalisation)."""

    def __init__(self, gn: nn.GroupNorm) -> None:
        super().__init__()
        self.groups, self.channels, self.eps = gn.num_groups, gn.num_channels, gn.eps
        self.weight, self.bias = gn.weight, gn.bias

    def _group_mean(self, m: Tensor) -> Tensor:
        g, c = self.groups, self.channels
        spread = torch.ones(1, 1, c // g, dtype=m.dtype, device=m.device)  # broadcast back, no shape ops
        return (m.reshape(-1, g, c // g).mean(2, keepdim=True) * spread).reshape(-1, c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        d = x - self._group_mean(x.mean((2, 3), keepdim=True))
        var = self._group_mean((d * d).mean((2, 3), keepdim=True))
        return d / torch.sqrt(var + self.eps) * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)


def _swap_group_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.GroupNorm):
            setattr(module, name, ChannelGroupNorm(child))
        else:
            _swap_group_norms(child)


class DegradeModule(nn.Module):
    """:class:`MultiScaleVQGAN` as one graph for export and the runners: ranks are *inputs*.

    ``forward(x, k_top, k_mid, k_bottom)``: ``x`` ``1,3,H,W`` in [0, 1] (H, W multiples of 8),
    ``k_*`` int64 ``(1,)`` 1-based ranks, each in ``1..`` its branch's K; returns ``1,3,H,W`` in
    [0, 1]. The stochastic top-k lookup (paper Sec. 3.2) runs inside the graph: squared distances
    to every codebook entry, ONE TopK per branch with a constant K (``k_max``: one int for all
    branches or a (top, middle, bottom) triple, each at most :data:`TOPK_LIMIT`, as TensorRT
    requires), a Gather of column ``k - 1`` of the sorted indices, and a Gather of the codebook
    rows. The indices equal :meth:`VectorQuantizer.lookup`'s for every ``k <= K``.
    """

    def __init__(self, net: MultiScaleVQGAN, k_max: int | Sequence[int] = K_MAX) -> None:
        super().__init__()
        n_embed = net.config.n_embed
        ks = (k_max,) * 3 if isinstance(k_max, int) else tuple(int(k) for k in k_max)
        if len(ks) != 3 or not all(1 <= k <= min(n_embed, TOPK_LIMIT) for k in ks):
            raise ValueError(f"DegradeModule: k_max must lie in 1..{min(n_embed, TOPK_LIMIT)} "
                             f"(one int or three), got {k_max}")
        self.net = copy.deepcopy(net)  # its GroupNorms are swapped; the caller's net is untouched
        _swap_group_norms(self.net)
        self.k_max = ks

    def lookup(self, z: Tensor, k: Tensor, k_max: int | None = None) -> Tensor:
        """Codebook indices (``B*H*W``) of the ``k``-th nearest entry of every token of ``z``
        (TopK with the constant ``k_max``, default the bottom branch's)."""
        d = z.shape[1]
        # f32 under a bf16 autocast: the lookup is exact for the features it is given
        with torch.autocast(z.device.type, enabled=False):
            zf = z.float().permute(0, 2, 3, 1).reshape(-1, d)
            e = self.net.codebook.embedding.weight.float()
            dist = zf.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2.0 * zf @ e.t()
            order = dist.topk(k_max or self.k_max[2], dim=1, largest=False, sorted=True).indices  # N, K
        return order.index_select(1, k.reshape(1) - 1).reshape(-1)  # callers check 1 <= k <= K

    def _quantize(self, z: Tensor, k: Tensor, k_max: int) -> Tensor:
        b, d, h, w = z.shape
        e = self.net.codebook.embedding.weight
        return e.index_select(0, self.lookup(z, k, k_max)).reshape(b, h, w, d).permute(0, 3, 1, 2)

    def forward(self, x: Tensor, k_top: Tensor, k_mid: Tensor, k_bottom: Tensor) -> Tensor:
        z_top, z_mid, z_bot = self.net.encode(x * 2.0 - 1.0)
        kt, km, kb = self.k_max
        y = self.net.decode(self._quantize(z_top, k_top, kt), self._quantize(z_mid, k_mid, km),
                            self._quantize(z_bot, k_bottom, kb))
        return ((y + 1.0) * 0.5).clamp(0.0, 1.0)


def _uniform(lo: int, hi: int, n: int, g: torch.Generator) -> Tensor:
    return torch.randint(lo, hi + 1, (n,), generator=g, dtype=torch.int64)


def sample_k(mode: str, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Draw per-sample top-k ranks (int64, shape ``(batch,)``, 1-based) for (top, middle, bottom).

    Modes:
        ``"paper"``: top 1, middle 1, bottom ~ U{1..50}.
        ``"released"``: top 1, middle ~ U{1..10}, bottom from tiers 0.3 U{1..15} / 0.4 U{16..30} /
        0.3 U{31..50} (the released ``TopkVQGANDataset``).
        ``"nearest"``: all 1.
    """
    if batch < 1:
        raise ValueError(f"sample_k: batch must be >= 1, got {batch}")
    ones = torch.ones(batch, dtype=torch.int64)
    if mode == "paper":
        return ones, ones.clone(), _uniform(1, K_MAX, batch, generator)
    if mode == "released":
        k_mid = _uniform(1, 10, batch, generator)
        u = torch.rand(batch, generator=generator)
        lo = torch.where(u < 0.3, 1, torch.where(u < 0.7, 16, 31))
        hi = torch.where(u < 0.3, 15, torch.where(u < 0.7, 30, 50))
        k_bot = lo + (torch.rand(batch, generator=generator) * (hi - lo + 1)).long().clamp_max(hi - lo)
        return ones, k_mid, k_bot
    if mode == "nearest":
        return ones, ones.clone(), ones.clone()
    raise ValueError(f"sample_k: unknown mode {mode!r}; accepted: 'paper', 'released', 'nearest'")
