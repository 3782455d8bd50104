"""Default metric options of ``vqdsr eval`` (no heavy imports: the CLI parser reads them)."""
from __future__ import annotations

__all__ = ["DEFAULT_OPTIONS"]

#: Metric options (recorded in the JSON report and in the metrics cache key). NIQE and ColorVideoVDP
#: are subsampled by default to fit a 2-core CPU: ColorVideoVDP costs about 2 s per 272x480 frame
#: there (about 4 s per 544x960 frame), NIQE about 0.2 s per 544x960 frame (both with a busy CPU).
DEFAULT_OPTIONS: dict[str, object] = {
    "metrics": ["psnr_y", "ssim_y", "ssimulacra2", "cvvdp", "flicker", "niqe"],
    "niqe_step": 2,
    "cvvdp_display": "standard_fhd",
    "cvvdp_frames": 8,
    "cvvdp_crop": [272, 480],
}
