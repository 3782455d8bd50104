"""Weights: safe loading, architecture recognition, the model registry and set-up conversion."""
from .descriptors import KINDS, ModelDescriptor, describe
from .loading import WeightsError, load_state_dict, save_state_dict
from .registry import (ModelInfo, default_model, default_name, installed_models, model_dir, resolve,
                       resolve_model)

__all__ = [
    "KINDS", "ModelDescriptor", "describe", "WeightsError", "load_state_dict", "save_state_dict",
    "ModelInfo", "default_model", "default_name", "installed_models", "model_dir", "resolve", "resolve_model",
    "load_model",
]


def load_model(model, kind: str):
    """``(net, descriptor, name)`` of a model of ``kind`` (:func:`.models.load_model`)."""
    from .models import load_model as _load

    return _load(model, kind)
