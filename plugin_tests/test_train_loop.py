"""training/loop.py: the infrastructure both trainers share (the trainers' own tests run it end to end)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vsvqdsr.training.loop import (LossLog, ema_update, finish_distributed, load_checkpoint, progress_bar,
                                   save_checkpoint, setup_distributed, to_cpu, wrap_ddp)
from vsvqdsr.weights.loading import WeightsError


def test_single_process_setup_and_no_ddp(monkeypatch):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    dev, rank, world, local = setup_distributed("cpu")
    assert (dev, rank, world, local) == (torch.device("cpu"), 0, 1, 0)
    net = nn.Linear(2, 2)
    assert wrap_ddp(net, dev, world) is net
    finish_distributed()  # nothing to leave: no error


def test_ema_update_is_the_exponential_average():
    torch.manual_seed(0)
    net, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update(ema, net, 0.75)
    for e, b, g in zip(ema.parameters(), before, net.parameters()):
        assert torch.allclose(e, 0.75 * b + 0.25 * g)
    ema_update(ema, net, 0.0)
    assert all(torch.equal(e, g) for e, g in zip(ema.parameters(), net.parameters()))


def test_checkpoint_round_trip_and_refusals(tmp_path):
    state = {"iter": 7, "params": {"w": torch.arange(3.0, requires_grad=True) * 2}, "history": [{"l1": 0.5}],
             "list": [torch.ones(2)]}
    save_checkpoint(state, tmp_path / "a" / "latest.pt", tmp_path / "a" / "iter_7.pt")
    for name in ("latest.pt", "iter_7.pt"):
        back = load_checkpoint(tmp_path / "a" / name)
        assert back["iter"] == 7 and torch.equal(back["params"]["w"], torch.tensor([0.0, 2.0, 4.0]))
        assert not back["params"]["w"].requires_grad and back["history"] == [{"l1": 0.5}]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable run checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="not a run checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    assert to_cpu("text") == "text"


def test_loss_log_appends_on_the_main_process_only(tmp_path):
    LossLog(tmp_path / "log.jsonl").write({"step": 1, "l1": 0.25})
    LossLog(tmp_path / "log.jsonl").write({"step": 2, "l1": 0.125})
    LossLog(tmp_path / "other.jsonl", enabled=False).write({"step": 1})
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"step": 1, "l1": 0.25}, {"step": 2, "l1": 0.125}]
    assert not (tmp_path / "other.jsonl").exists()


def test_progress_bar_hides_when_asked_or_quiet():
    from vsvqdsr.log import set_verbosity

    def hidden(**kw) -> bool:
        bar = progress_bar(10, 3, "x", **kw)
        off = bar.disable
        bar.close()
        return off

    assert not hidden() and hidden(show=False)
    set_verbosity(quiet=1)
    try:
        assert hidden()
    finally:
        set_verbosity()
