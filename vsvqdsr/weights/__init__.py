"""Weights: safe loading, architecture recognition, the model registry and set-up conversion."""
from .descriptors import ModelDescriptor, describe
from .loading import WeightsError, load_state_dict, save_state_dict
from .registry import ModelInfo, default_model, installed_models, model_dir, resolve_model

__all__ = [
    "ModelDescriptor", "describe", "WeightsError", "load_state_dict", "save_state_dict",
    "ModelInfo", "default_model", "installed_models", "model_dir", "resolve_model",
]
