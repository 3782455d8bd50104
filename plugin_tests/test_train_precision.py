"""Training precision: the auto rule on faked devices, and a real bf16-autocast step of train-vsr."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsvqdsr.nets.vsr import RecurrentVSR
from vsvqdsr.training.precision import choose_train_precision
from vsvqdsr.training.synthetic import write_clip_folders
from vsvqdsr.training.vsr_train import TrainConfig, load_run_checkpoint, train
from vsvqdsr.weights.loading import save_state_dict


@pytest.mark.parametrize("device, caps, cuda_bf16, expected", [
    ("cpu", {"avx2", "amx_bf16", "amx_tile"}, False, "bf16"),
    ("cpu", {"avx2", "avx512_bf16"}, False, "fp32"),   # AVX-512 BF16 without AMX: bf16 convs are slower
    ("cpu", {"avx2"}, False, "fp32"),
    ("cuda", set(), True, "bf16"),
    ("cuda", set(), False, "fp32"),
])
def test_auto_rule(device, caps, cuda_bf16, expected):
    assert choose_train_precision("auto", device, caps, cuda_bf16) == expected
    assert choose_train_precision("fp32", device, caps, cuda_bf16) == "fp32"
    assert choose_train_precision("bf16", device, caps, cuda_bf16) == "bf16"


def test_bad_precision_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        choose_train_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        train(TrainConfig(stage=1, data=[str(tmp_path)], out=str(tmp_path / "r"), precision="half"))


def test_bf16_autocast_step_keeps_fp32_weights_and_a_close_loss(tmp_path: Path, capfd):
    torch.set_num_threads(1)
    write_clip_folders(tmp_path / "data", clips=1, num_frames=4, size=64)
    torch.manual_seed(0)
    save_state_dict(RecurrentVSR(feedback=False).state_dict(), tmp_path / "init.safetensors")
    base = dict(stage=1, data=[str(tmp_path / "data")], init=str(tmp_path / "init.safetensors"), iters=1, patch=32,
                batch=1, frames=2, workers=0, threads=1, log_every=1, save_every=100, sample_every=100, seed=0)
    l32 = train(TrainConfig(out=str(tmp_path / "f32"), precision="fp32", **base), progress=False)["history"][-1]["l1"]
    l16 = train(TrainConfig(out=str(tmp_path / "b16"), precision="bf16", **base), progress=False)["history"][-1]["l1"]
    assert "training precision: bf16" in capfd.readouterr().err
    st = load_run_checkpoint(tmp_path / "b16")
    assert all(v.dtype == torch.float32 for v in st["params"].values())
    # autocast really ran (bf16 rounding changes the loss) and stays close to fp32 (first step, same batch)
    assert l16 != l32 and abs(l16 - l32) < 0.02 * l32
