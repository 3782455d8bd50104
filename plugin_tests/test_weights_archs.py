"""The model layer: every architecture entry recognises its kind, reads its hyperparameters from
shapes, and refuses damaged or crafted files with a short WeightsError before allocating anything."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT
from vsvqdsr.nets.rrdb import RRDBNet
from vsvqdsr.nets.srvgg import SRVGGCompact
from vsvqdsr.nets.vqgan import LITE_CONFIG, PAPER_CONFIG, MultiScaleVQGAN, TopVQGAN
from vsvqdsr.nets.vsr import RecurrentVSR
from vsvqdsr.weights import WeightsError, installed_models, load_model, resolve, save_state_dict
from vsvqdsr.weights.archs import ARCHS, RECURRENT_VSR, RRDB, SRVGG, VQGAN, describe_any
from vsvqdsr.weights.degrader import load_degrader, save_degrader


def _meta_sd(make) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return make().state_dict()


@pytest.mark.parametrize("feedback", [False, True])
def test_recurrent_vsr_both_variants(feedback):
    sd = RecurrentVSR(feedback=feedback).state_dict()
    arch, d = describe_any(sd)
    assert arch is RECURRENT_VSR and d.kind == "vsr" and d.scale == 4 and d.size_multiple == 4
    assert d.variant == ("animesr" if feedback else "vqdsr") and d.feedback is feedback
    assert d.num_params == (1_495_376 if feedback else 1_467_728) and d.num_block == (5, 3, 2)


@pytest.mark.parametrize("cfg,variant", [(LITE_CONFIG, "lite"), (PAPER_CONFIG, "paper")])
@pytest.mark.parametrize("stage", [1, 2])
def test_vqgan_paper_and_lite_stage_1_and_2(cfg, variant, stage):
    cls = MultiScaleVQGAN if stage == 2 else TopVQGAN
    sd = _meta_sd(lambda: cls(cfg))  # the paper config's shapes without allocating it
    arch, d = describe_any(sd)
    assert arch is VQGAN and d.kind == "degrader" and d.stage == stage and d.variant == variant
    assert d.config == cfg and d.scale == 1 and d.size_multiple == 8
    assert d.num_params == sum(v.numel() for v in sd.values())


def test_srvgg_and_rrdb():
    arch, d = describe_any(SRVGGCompact(num_feat=16, num_conv=4, scale=2).state_dict())
    assert arch is SRVGG and (d.kind, d.scale, d.num_feat, d.num_block) == ("sisr", 2, 16, (4,))
    arch, d = describe_any(RRDBNet(num_feat=8, num_block=2, num_grow=4).state_dict())
    assert arch is RRDB and (d.kind, d.scale, d.num_feat, d.num_block) == ("sisr", 4, 8, (2,))
    assert d.config["num_grow"] == 4


def test_every_installed_model_loads_through_the_one_loader():
    kinds = set()
    for kind in ("vsr", "degrader", "sisr"):
        for name in installed_models(kind):
            if name == "realesrgan-x4plus":
                continue  # 16.7 M params: recognised in the same way, only slower
            net, d, shown = load_model(name, kind)
            assert d.kind == kind and shown == name and not net.training
            kinds.add(kind)
    assert {"vsr", "degrader"} <= kinds
    # one default rule for every kind
    assert resolve(None, "degrader")[0] == resolve("default", "degrader")[0] == "degrade-lite"


def test_wrong_kind_is_refused():
    with pytest.raises(WeightsError, match="unknown architecture for a sisr model"):
        load_model(str(ROOT / "vsvqdsr" / "models" / "vqdsr-ft.safetensors"), "sisr")
    with pytest.raises(WeightsError, match="unknown degrader model"):
        load_model("vqdsr-ft", "degrader")


_HUGE = """
import resource, sys, time
from vsvqdsr.weights import WeightsError, load_model
import torch  # imported before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    load_model(sys.argv[1], sys.argv[2])
    print("LOADED")
except WeightsError as e:
    dt = time.perf_counter() - t0
    grow = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(f"REFUSED {dt:.3f} {grow} {e}")
"""


def _refuse_in_subprocess(path, kind) -> tuple[float, int, str]:
    res = subprocess.run([sys.executable, "-c", _HUGE, str(path), kind], capture_output=True, text=True,
                         timeout=120)
    assert res.stdout.startswith("REFUSED"), res.stdout + res.stderr
    _, dt, grow, msg = res.stdout.strip().split(" ", 3)
    return float(dt), int(grow), msg


def test_huge_block_count_is_refused_fast_without_allocating(tmp_path):
    sd = RecurrentVSR().state_dict()
    sd["recurrent_cell.body_s1_first.3999.conv1.weight"] = torch.zeros(64, 64, 3, 3)
    save_state_dict(sd, tmp_path / "huge.safetensors")
    dt, grow_kb, msg = _refuse_in_subprocess(tmp_path / "huge.safetensors", "vsr")
    # a 4000-block net would be ~1.2 GB of parameters and take many seconds to build
    assert dt < 2.0 and grow_kb < 100_000, (dt, grow_kb)
    assert "residual blocks at scale 1/1 is 4000; accepted: 0..64" in msg, msg
    assert len(msg) < 200


def test_huge_block_count_in_a_degrader_is_refused_fast(tmp_path):
    net = MultiScaleVQGAN(LITE_CONFIG)
    save_degrader(net, tmp_path / "ok.safetensors")
    sd = net.state_dict()
    sd["top.encode_0.blocks.999999.conv1.weight"] = torch.zeros(16, 16, 3, 3)
    save_state_dict(sd, tmp_path / "huge.safetensors", {"kind": "degrader", "vqgan_stage": "2"})
    dt, grow_kb, msg = _refuse_in_subprocess(tmp_path / "huge.safetensors", "degrader")
    assert dt < 2.0 and grow_kb < 100_000 and "ResnetBlocks per stage is 1000000" in msg, (dt, grow_kb, msg)


def _crafted(tmp_path, name, edit, meta=None):
    sd = {k: v.clone() for k, v in MultiScaleVQGAN(LITE_CONFIG).state_dict().items()}
    edit(sd)
    p = tmp_path / f"{name}.safetensors"
    save_state_dict(sd, p, {"kind": "degrader", **(meta or {})})
    return p


@pytest.mark.parametrize("name,edit,meta,match", [
    ("no_blocks", lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("top.encode_0.blocks.")], None,
     "ResnetBlocks per stage is 0; accepted: 1..64"),
    ("gap", lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("top.encode_0.blocks.0.")], None,
     "blocks \\[0\\] are missing"),
    ("zero_width", lambda sd: sd.__setitem__("conv_in.weight", torch.zeros(0, 3, 3, 3)), None,
     "VQGAN base width is 0"),
    ("groups", lambda sd: None, {"vqgan_config": json.dumps({"norm_groups": 7})}, "GroupNorm with 7 groups"),
    ("bad_meta", lambda sd: None, {"vqgan_config": "{"}, "bad vqgan_config metadata"),
    ("shape", lambda sd: sd.__setitem__("mid.decode_convin.weight", torch.zeros(64, 64, 1, 1)), None,
     "mid.decode_convin.weight has shape"),
    ("extra", lambda sd: sd.__setitem__("bot.surprise.weight", torch.zeros(1)), None, "unexpected bot.surprise"),
    ("missing", lambda sd: sd.pop("conv_out.weight"), None, "missing conv_out.weight"),
    ("codebook", lambda sd: sd.__setitem__("top.quantize.embedding.weight", torch.zeros(1, 64)), None,
     "codebook size is 1"),
    ("ints", lambda sd: sd.__setitem__("conv_out.bias", torch.zeros(3, dtype=torch.int64)), None,
     "not a floating-point tensor"),
])
def test_crafted_degrader_files_are_short_weights_errors(tmp_path, name, edit, meta, match):
    p = _crafted(tmp_path, name, edit, meta)
    with pytest.raises(WeightsError, match=match) as ei:
        load_degrader(p)
    assert len(str(ei.value)) < 300


def test_crafted_sisr_files_are_refused():
    sd = SRVGGCompact(num_feat=8, num_conv=2).state_dict()
    sd["body.5000.weight"] = torch.zeros(8)
    with pytest.raises(WeightsError, match="SRVGG layers is 5001"):
        SRVGG.describe(sd)
    sd = RRDBNet(num_feat=8, num_block=1, num_grow=4).state_dict()
    sd["body.12345.rdb1.conv1.weight"] = torch.zeros(4, 8, 3, 3)
    with pytest.raises(WeightsError, match="RRDB blocks is 12346"):
        RRDB.describe(sd)
    sd = {"body.0.weight": torch.zeros(8, 3, 3, 3), "body.1.weight": torch.zeros(8),
          "body.2.weight": torch.zeros(47, 8, 3, 3), "body.2.bias": torch.zeros(47)}
    with pytest.raises(WeightsError, match="last conv has 47 outputs"):
        SRVGG.describe(sd)


def test_index_with_thousands_of_digits_is_refused():
    sd = RecurrentVSR().state_dict()
    sd["recurrent_cell.body_s1_first." + "9" * 5000 + ".conv1.weight"] = torch.zeros(1)
    t0 = time.perf_counter()
    with pytest.raises(WeightsError, match="out of range"):
        RECURRENT_VSR.describe(sd)
    assert time.perf_counter() - t0 < 1.0


def test_entries_are_distinct():
    """Each entry recognises only its own architecture's keys."""
    samples = {"recurrent-vsr": RecurrentVSR().state_dict(), "vqgan": _meta_sd(lambda: MultiScaleVQGAN(LITE_CONFIG)),
               "srvgg": SRVGGCompact(num_feat=8, num_conv=1).state_dict(),
               "rrdb": RRDBNet(num_feat=8, num_block=1, num_grow=4).state_dict()}
    for arch in ARCHS:
        assert [n for n, sd in samples.items() if arch.detect(sd)] == [arch.name]
