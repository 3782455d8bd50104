"""Architecture entries (spandrel style): recognise a state dict, validate it, build the network.

Every entry has ``detect(sd)`` (do the keys look like this architecture?), ``describe(sd, meta)``
(hyperparameters read from tensor shapes, bounded and checked for consistency, then every expected
key compared with its expected shape; returns a :class:`~.descriptors.ModelDescriptor`) and
``load(sd, desc)`` (build and load strictly). Nothing is allocated before ``describe`` has accepted
the file: the expected shapes come from the network built on torch's ``meta`` device (no storage),
and only after the block and channel counts were found within bounds. So a file with one added
key ``recurrent_cell.body_s1_first.3999.conv1.weight`` is refused in milliseconds with a short
:class:`WeightsError` instead of building a 4000-block network.

Entries: :data:`RECURRENT_VSR` (AnimeSR / VQD-SR, with and without feedback), :data:`VQGAN`
(the multi-scale degrader, stage 1 or 2, paper or lite config), :data:`SRVGG`, :data:`RRDB`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from ..nets.rrdb import RRDBNet
from ..nets.srvgg import SRVGGCompact
from ..nets.vqgan import CONFIGS, MultiScaleVQGAN, TopVQGAN, VQGANConfig
from ..nets.vsr import RecurrentVSR
from .descriptors import ModelDescriptor
from .loading import WeightsError

__all__ = ["Arch", "ARCHS", "RECURRENT_VSR", "VQGAN", "SRVGG", "RRDB", "detect", "describe_any",
           "LIMITS"]

#: Upper bounds checked before anything is built (far above every released model).
LIMITS = {"blocks": 64, "channels": 1024, "codebook": 16384, "scale": 8}

Meta = Mapping[str, str]


def _bounded(what: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise WeightsError(f"{what} is {value}; accepted: {lo}..{hi}")
    return value


def _shape(sd: Mapping[str, torch.Tensor], key: str, ndim: int) -> tuple[int, ...]:
    t = sd.get(key)
    if t is None:
        raise WeightsError(f"missing tensor {key}")
    if t.dim() != ndim:
        raise WeightsError(f"{key} has {t.dim()} dimensions, expected {ndim}")
    return tuple(int(s) for s in t.shape)


def _indices(keys: Iterable[str], pattern: str) -> list[int]:
    """Distinct integer indices captured by ``pattern`` (one group) among ``keys``, sorted."""
    rx = re.compile(pattern)
    found = set()
    for k in keys:
        m = rx.match(k)
        if m:
            digits = m.group(1)
            if len(digits) > 6:  # int() of a crafted 10,000-digit index would itself be slow
                raise WeightsError(f"block index {digits[:12]}... in {k[:60]!r} is out of range")
            found.add(int(digits))
    return sorted(found)


def _count(what: str, idx: list[int], lo: int = 1) -> int:
    """Block count from the indices found: bounded, and the indices must be exactly 0..n-1."""
    n = (idx[-1] + 1) if idx else 0
    _bounded(what, n, lo, LIMITS["blocks"])
    if idx != list(range(n)):
        missing = sorted(set(range(n)) - set(idx))[:3]
        raise WeightsError(f"{what}: blocks {missing} are missing (found indices up to {n - 1})")
    return n


def _expected(make: Callable[[], nn.Module]) -> dict[str, tuple[int, ...]]:
    """Parameter/buffer shapes of the network ``make`` builds, on the meta device (nothing allocated)."""
    with torch.device("meta"):
        net = make()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_keys(sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], what: str) -> None:
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise WeightsError(f"not a consistent {what}: {'; '.join(parts)}")
    for k, shape in expected.items():
        got = tuple(int(s) for s in sd[k].shape)
        if got != shape:
            raise WeightsError(f"{what}: {k} has shape {list(got)}, expected {list(shape)}")
    bad = [k for k in expected if not sd[k].is_floating_point()]
    if bad:
        raise WeightsError(f"{what}: {bad[0]} is not a floating-point tensor ({sd[bad[0]].dtype})")


def _load_strict(net: nn.Module, sd: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    try:
        net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except RuntimeError as e:  # describe() checked keys and shapes; this is a last guard
        raise WeightsError(f"weights do not fit the recognised {what}: {e}") from e
    return net.eval().requires_grad_(False)


class Arch:
    """One architecture: ``detect`` by keys, ``describe`` (validate, no allocation), ``load``."""

    name: str = ""
    kind: str = ""

    def detect(self, sd: Mapping[str, torch.Tensor]) -> bool:
        raise NotImplementedError

    def describe(self, sd: Mapping[str, torch.Tensor], meta: Meta | None = None) -> ModelDescriptor:
        raise NotImplementedError

    def build(self, desc: ModelDescriptor) -> nn.Module:
        raise NotImplementedError

    def select(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tensors that belong to the network (others, e.g. optimiser leftovers, are ignored)."""
        return dict(sd)

    def load(self, sd: Mapping[str, torch.Tensor], desc: ModelDescriptor | None = None) -> nn.Module:
        desc = desc or self.describe(sd)
        return _load_strict(self.build(desc), self.select(sd), f"{desc.arch} ({desc.variant})")


class _RecurrentVSR(Arch):
    """AnimeSR (SR feedback) and VQD-SR (no feedback) recurrent x4 networks (``recurrent_cell.*``)."""

    name, kind = "recurrent-vsr", "vsr"
    _P = "recurrent_cell."

    def detect(self, sd):
        return f"{self._P}conv_s1_first.0.weight" in sd or f"{self._P}fusion.2.weight" in sd

    def select(self, sd):
        return {k: v for k, v in sd.items() if k.startswith(self._P)}

    def describe(self, sd, meta=None):
        if not self.detect(sd):
            raise WeightsError("not a recurrent VSR checkpoint (AnimeSR / VQD-SR): "
                               "missing recurrent_cell.conv_s1_first / recurrent_cell.fusion keys")
        num_feat, in_ch = _shape(sd, f"{self._P}conv_s1_first.0.weight", 4)[:2]
        out_ch = _shape(sd, f"{self._P}fusion.2.weight", 4)[0]
        _bounded("hidden-state channels", num_feat, 1, LIMITS["channels"])
        img_ch = out_ch - num_feat
        scale = int(round(math.sqrt(img_ch / 3))) if img_ch > 0 else 0
        if scale < 1 or 3 * scale * scale != img_ch or scale > LIMITS["scale"]:
            raise WeightsError(f"fusion output has {out_ch} channels; expected num_feat + 3*scale^2 "
                               f"with scale 1..{LIMITS['scale']}")
        extra = in_ch - 9 - num_feat
        if extra not in (0, img_ch):
            raise WeightsError(f"first convolution has {in_ch} input channels; expected {9 + num_feat} "
                               f"(VQD-SR) or {9 + num_feat + img_ch} (AnimeSR)")
        feedback = extra == img_ch
        keys = list(sd)
        counts = tuple(_count(f"residual blocks at scale 1/{s}",
                              _indices(keys, rf"^recurrent_cell\.body_s{s}_first\.(\d+)\."), lo=0)
                       for s in (1, 2, 4))
        if not counts[0] >= counts[1] >= counts[2]:
            raise WeightsError(f"residual block counts {counts} are not non-increasing")
        expected = _expected(lambda: RecurrentVSR(num_feat, counts, scale, feedback))
        _check_keys(self.select(sd), expected, "recurrent VSR network")
        return ModelDescriptor(
            arch=self.name, variant="animesr" if feedback else "vqdsr", feedback=feedback, num_feat=num_feat,
            num_block=counts, scale=scale, size_multiple=4, fp16=True, bf16=True,
            num_params=int(sum(math.prod(s) for s in expected.values())), kind=self.kind,
            config={"num_feat": num_feat, "num_block": list(counts), "scale": scale, "feedback": feedback})

    def build(self, desc):
        return RecurrentVSR(desc.num_feat, tuple(desc.num_block), desc.scale, desc.feedback)


def _groups_for(channels: list[int]) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if all(c % g == 0 for c in channels):
            return g
    return 1


class _VQGAN(Arch):
    """The multi-scale VQGAN degrader (stage 2) and its top-only stage-1 model, our key names
    (official checkpoints are mapped first by :func:`~.degrader.map_official_keys`).

    ``meta`` may hold ``vqgan_config`` (JSON, our files): its ``norm_groups`` cannot be read from
    shapes; without it the paper/lite configs get their own (32 / 8), others the largest power of
    two <= 32 dividing every width.
    """

    name, kind = "vqgan", "degrader"
    _NEED = ("conv_in.weight", "top.encode_1.0.conv.weight", "top.encode_2.0.conv.weight",
             "top.encode_3.0.conv.weight", "top.encode_4.0.weight", "top.quantize.embedding.weight",
             "conv_out.weight")

    def detect(self, sd):
        return "top.quantize.embedding.weight" in sd and "conv_in.weight" in sd

    def describe(self, sd, meta=None):
        missing = [k for k in self._NEED if k not in sd]
        if missing:
            raise WeightsError(f"not a VQGAN degrader checkpoint: missing {', '.join(missing[:3])}")
        ch = _bounded("VQGAN base width", _shape(sd, "conv_in.weight", 4)[0], 1, LIMITS["channels"])
        widths = [ch] + [_shape(sd, k, 4)[0] for k in self._NEED[1:5]]
        for w in widths:
            _bounded("VQGAN width", w, 1, LIMITS["channels"])
        if any(w % ch for w in widths):
            raise WeightsError(f"VQGAN widths {widths} are not multiples of the base width {ch}")
        n_embed, embed_dim = _shape(sd, "top.quantize.embedding.weight", 2)
        _bounded("codebook size", n_embed, 2, LIMITS["codebook"])
        _bounded("code vector size", embed_dim, 1, LIMITS["channels"])
        nrb = _count("ResnetBlocks per stage", _indices(sd, r"^top\.encode_0\.blocks\.(\d+)\."))
        groups = None
        if meta and "vqgan_config" in meta:
            import json
            try:
                groups = int(json.loads(meta["vqgan_config"])["norm_groups"])
            except (ValueError, KeyError, TypeError) as e:
                raise WeightsError(f"bad vqgan_config metadata ({e})") from e
        mult = tuple(w // ch for w in widths)
        variant = next((n for n, c in CONFIGS.items()
                        if (c.ch, c.ch_mult, c.num_res_blocks, c.embed_dim, c.n_embed)
                        == (ch, mult, nrb, embed_dim, n_embed)), "custom")
        # a named config's shapes get its groups (lite: 8); others the largest power of two <= 32
        groups = groups or (CONFIGS[variant].norm_groups if variant in CONFIGS else _groups_for(widths))
        bad = [w for w in widths if groups < 1 or w % groups]
        if bad:
            raise WeightsError(f"GroupNorm with {groups} groups does not divide the widths {bad}")
        cfg = VQGANConfig(ch=ch, ch_mult=mult,  # type: ignore[arg-type]
                          num_res_blocks=nrb, embed_dim=embed_dim, n_embed=n_embed, norm_groups=groups)
        stage = 2 if any(k.startswith(("mid.", "bot.")) for k in sd) else 1
        cls = MultiScaleVQGAN if stage == 2 else TopVQGAN
        expected = _expected(lambda: cls(cfg))
        _check_keys(sd, expected, f"stage-{stage} VQGAN")
        return ModelDescriptor(
            arch=self.name, variant=variant, feedback=False, num_feat=ch, num_block=(nrb,), scale=1,
            size_multiple=8, fp16=True, bf16=True, num_params=int(sum(math.prod(s) for s in expected.values())),
            kind=self.kind, stage=stage, config=cfg)

    def build(self, desc):
        return (MultiScaleVQGAN if desc.stage == 2 else TopVQGAN)(desc.config)


class _SRVGG(Arch):
    """Real-ESRGAN's compact VGG-style SR network (``body.{2i}`` convs, ``body.{2i+1}`` PReLUs)."""

    name, kind = "srvgg", "sisr"

    def detect(self, sd):
        w0, w1 = sd.get("body.0.weight"), sd.get("body.1.weight")
        return w0 is not None and w1 is not None and w0.dim() == 4 and w1.dim() == 1

    def describe(self, sd, meta=None):
        if not self.detect(sd):
            raise WeightsError("not an SRVGG checkpoint: missing body.0 conv / body.1 PReLU")
        idx = _indices(sd, r"^body\.(\d+)\.")
        n_layers = (idx[-1] + 1) if idx else 0
        _bounded("SRVGG layers", n_layers, 3, 2 * LIMITS["blocks"] + 3)
        if n_layers % 2 == 0:
            raise WeightsError(f"SRVGG has {n_layers} body layers; expected an odd count (conv, PReLU, ..., conv)")
        num_conv = (n_layers - 3) // 2
        num_feat, in_ch = _shape(sd, "body.0.weight", 4)[:2]
        _bounded("SRVGG features", num_feat, 1, LIMITS["channels"])
        _bounded("SRVGG input channels", in_ch, 1, 4)
        last = _shape(sd, f"body.{n_layers - 1}.weight", 4)[0]
        out_ch = int((meta or {}).get("out_ch", in_ch))
        scale = int(round(math.sqrt(last / out_ch))) if last > 0 and out_ch > 0 else 0
        if scale < 1 or scale * scale * out_ch != last or scale > LIMITS["scale"]:
            raise WeightsError(f"SRVGG last conv has {last} outputs; expected out_ch * scale^2 "
                               f"with scale 1..{LIMITS['scale']}")
        expected = _expected(lambda: SRVGGCompact(in_ch, out_ch, num_feat, num_conv, scale))
        _check_keys(sd, expected, "SRVGG network")
        return ModelDescriptor(
            arch=self.name, variant=self.name, feedback=False, num_feat=num_feat, num_block=(num_conv,),
            scale=scale, size_multiple=1, fp16=True, bf16=True,
            num_params=int(sum(math.prod(s) for s in expected.values())), kind=self.kind, in_channels=in_ch,
            out_channels=out_ch, config={"in_ch": in_ch, "out_ch": out_ch, "num_feat": num_feat,
                                         "num_conv": num_conv, "scale": scale})

    def build(self, desc):
        c = desc.config
        return SRVGGCompact(c["in_ch"], c["out_ch"], c["num_feat"], c["num_conv"], c["scale"])


class _RRDB(Arch):
    """ESRGAN / Real-ESRGAN x4 RRDBNet (``conv_first``, ``body.{b}.rdb{1,2,3}.conv{1..5}``, ``conv_up1/2``)."""

    name, kind = "rrdb", "sisr"

    def detect(self, sd):
        return "conv_first.weight" in sd and "conv_up1.weight" in sd and "body.0.rdb1.conv1.weight" in sd

    def describe(self, sd, meta=None):
        if not self.detect(sd):
            raise WeightsError("not an RRDBNet checkpoint: missing conv_first / conv_up1 / body.0.rdb1 keys")
        num_feat, in_ch = _shape(sd, "conv_first.weight", 4)[:2]
        _bounded("RRDB features", num_feat, 1, LIMITS["channels"])
        _bounded("RRDB input channels", in_ch, 1, 4)
        num_grow = _bounded("RRDB growth channels", _shape(sd, "body.0.rdb1.conv1.weight", 4)[0], 1,
                            LIMITS["channels"])
        out_ch = _bounded("RRDB output channels", _shape(sd, "conv_last.weight", 4)[0], 1, 4)
        n = _count("RRDB blocks", _indices(sd, r"^body\.(\d+)\."))
        expected = _expected(lambda: RRDBNet(in_ch, out_ch, num_feat, n, num_grow))
        _check_keys(sd, expected, "RRDB network")
        return ModelDescriptor(
            arch=self.name, variant=self.name, feedback=False, num_feat=num_feat, num_block=(n,), scale=4,
            size_multiple=1, fp16=True, bf16=True, num_params=int(sum(math.prod(s) for s in expected.values())),
            kind=self.kind, in_channels=in_ch, out_channels=out_ch,
            config={"in_ch": in_ch, "out_ch": out_ch, "num_feat": num_feat, "num_block": n, "num_grow": num_grow})

    def build(self, desc):
        c = desc.config
        return RRDBNet(c["in_ch"], c["out_ch"], c["num_feat"], c["num_block"], c["num_grow"])


RECURRENT_VSR = _RecurrentVSR()
VQGAN = _VQGAN()
SRVGG = _SRVGG()
RRDB = _RRDB()
#: Every entry, in detection order (RRDB before SRVGG: both have ``body.0.*`` keys).
ARCHS: tuple[Arch, ...] = (RECURRENT_VSR, VQGAN, RRDB, SRVGG)


def detect(sd: Mapping[str, torch.Tensor], kind: str | None = None) -> Arch:
    """The entry whose keys ``sd`` has (of ``kind`` if given), else :class:`WeightsError`."""
    for arch in ARCHS:
        if (kind is None or arch.kind == kind) and arch.detect(sd):
            return arch
    names = ", ".join(a.name for a in ARCHS if kind is None or a.kind == kind)
    raise WeightsError(f"unknown architecture{f' for a {kind} model' if kind else ''}; accepted: {names}")


def describe_any(sd: Mapping[str, torch.Tensor], meta: Meta | None = None,
                 kind: str | None = None) -> tuple[Arch, ModelDescriptor]:
    arch = detect(sd, kind)
    return arch, arch.describe(sd, meta)
