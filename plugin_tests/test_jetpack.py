"""The vs-jetpack adapter: VQDSRScaler is a vskernels Scaler that calls Upscale (run when vsjetpack is installed)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import vapoursynth as vs

pytest.importorskip("vsscale")
from vskernels import Scaler  # noqa: E402

import vsvqdsr as vqdsr  # noqa: E402
from conftest import ROOT, clip_from_array, clip_to_array, textured_frames  # noqa: E402
from vsvqdsr.filters.jetpack import VQDSRScaler  # noqa: E402

core = vs.core


@pytest.fixture(scope="module")
def yuv():
    rgb = clip_from_array(textured_frames(3, 12, 16, seed=2))
    return core.resize.Bicubic(rgb, format=vs.YUV444P16, matrix_s="709")


def test_is_a_vskernels_scaler(animesr_path):
    s = VQDSRScaler(model=str(animesr_path), backend="cpu")
    assert isinstance(s, Scaler)
    assert Scaler.ensure_obj(s) is s
    assert hash(s) == hash(VQDSRScaler(model=str(animesr_path), backend="cpu"))
    assert hash(s) != hash(VQDSRScaler(model=str(animesr_path), backend="cpu", max_chain=8))


def test_scale_is_upscale_at_the_size_in_the_input_format(yuv, animesr_path):
    out = VQDSRScaler(model=str(animesr_path), backend="cpu").scale(yuv, 40, 30)
    ref = vqdsr.Upscale(yuv, model=str(animesr_path), backend="cpu", width=40, height=30, format="same")
    assert (out.width, out.height, out.format.id) == (40, 30, vs.YUV444P16)
    assert np.array_equal(clip_to_array(out), clip_to_array(ref))


def test_shift_is_applied_in_the_final_resize(yuv, animesr_path):
    out = VQDSRScaler(model=str(animesr_path), backend="cpu", kernel="lanczos").scale(yuv, 40, 30, shift=(0.25, -0.5))
    up = vqdsr.Upscale(yuv, model=str(animesr_path), backend="cpu")
    ref = core.resize.Lanczos(up, 40, 30, src_top=1.0, src_left=-2.0, format=vs.YUV444P16, matrix=1,
                              range_s="limited")
    got, want = clip_to_array(out), clip_to_array(ref)
    assert np.array_equal(got, want)
    unshifted = clip_to_array(VQDSRScaler(model=str(animesr_path), backend="cpu", kernel="lanczos").scale(yuv, 40, 30))
    assert not np.array_equal(got, unshifted)


def test_supersample_and_default_size(yuv, animesr_path):
    s = VQDSRScaler(model=str(animesr_path), backend="cpu", format=None)
    ss = s.supersample(yuv, 2.0)
    assert (ss.width, ss.height, ss.format.id) == (32, 24, vs.RGBS)
    same = s.scale(yuv)  # vskernels' convention: the clip's own size
    assert (same.width, same.height) == (16, 12)


def test_bad_arguments_raise_upscale_errors(animesr_path):
    c420 = core.resize.Bicubic(clip_from_array(textured_frames(2, 12, 16)), format=vs.YUV420P8, matrix_s="709")
    s = VQDSRScaler(model=str(animesr_path), backend="cpu")
    with pytest.raises(vs.Error, match=r"^Upscale: 41x30 does not fit YUV420P8's chroma subsampling"):
        s.scale(c420, 41, 30)
    with pytest.raises(vs.Error, match=r"^Upscale: 41x30 does not fit YUV420P8's chroma subsampling"):
        s.scale(c420, 41, 30, shift=(0.5, 0))
    with pytest.raises(vs.Error, match=r"^Upscale: shift must be \(top, left\)"):
        s.scale(c420, 40, 30, shift=0.5)
    with pytest.raises(vs.Error, match=r"^Upscale: kernel must be one of"):
        VQDSRScaler(kernel="catrom", model=str(animesr_path)).scale(c420, 40, 30)
    with pytest.raises(vs.Error, match=r"^Upscale: VQDSRScaler takes width in scale\(\)"):
        VQDSRScaler(width=40)
    with pytest.raises(vs.Error, match=r"^Upscale: unknown argument\(s\) max_chian"):
        VQDSRScaler(model=str(animesr_path), max_chian=4).scale(c420, 40, 30)


def test_package_import_does_not_import_jetpack():
    code = ("import sys, vsvqdsr; vsvqdsr.Upscale; import vsvqdsr.filters.upscale; "
            "assert not any(m.split('.')[0] in ('vskernels', 'vsscale', 'vstools') for m in sys.modules), "
            "[m for m in sys.modules if m.startswith('vs')]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
