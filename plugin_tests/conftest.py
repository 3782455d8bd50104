"""Shared pytest configuration: the ``gpu`` marker (tests that need CUDA skip cleanly without it)."""


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped when torch.cuda.is_available() is False)")
