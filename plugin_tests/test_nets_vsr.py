"""The recurrent VSR network: sizes, parameter counts, streaming == batched."""
import pytest
import torch

from vsvqdsr.nets.vsr import RecurrentVSR


@pytest.mark.parametrize("feedback, count", [(False, 1_467_728), (True, 1_495_376)])
def test_parameter_counts(feedback, count):
    net = RecurrentVSR(feedback=feedback)
    assert sum(p.numel() for p in net.parameters()) == count
    first = net.recurrent_cell.conv_s1_first[0].weight
    assert first.shape == (64, 121 if feedback else 73, 3, 3)


@pytest.mark.parametrize("feedback", [False, True])
def test_streaming_equals_batched(feedback):
    torch.manual_seed(0)
    net = RecurrentVSR(feedback=feedback).eval()
    clip = torch.rand(2, 5, 3, 16, 20)
    with torch.no_grad():
        batched = net(clip)
        state, prev_out = net.initial_state(clip[:, 0])
        outs = []
        for t in range(5):
            prev, nxt = clip[:, max(t - 1, 0)], clip[:, min(t + 1, 4)]
            out, state = net.step(prev, clip[:, t], nxt, state, prev_out)
            prev_out = out if feedback else None
            outs.append(out)
    assert batched.shape == (2, 5, 3, 64, 80)
    torch.testing.assert_close(torch.stack(outs, 1), batched, rtol=0, atol=1e-6)


def test_single_frame_uses_itself_as_neighbours():
    torch.manual_seed(0)
    net = RecurrentVSR().eval()
    x = torch.rand(1, 1, 3, 8, 8)
    with torch.no_grad():
        y = net(x)[:, 0]
        state, _ = net.initial_state(x[:, 0])
        ref, _ = net.step(x[:, 0], x[:, 0], x[:, 0], state)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


def test_recurrence_carries_state():
    torch.manual_seed(0)
    net = RecurrentVSR().eval()
    clip = torch.rand(1, 3, 3, 8, 8)
    with torch.no_grad():
        full = net(clip)[:, 2]
        alone = net(clip[:, 1:])[:, 1]
    assert not torch.allclose(full, alone)


def test_size_not_multiple_of_four_is_rejected_by_shapes():
    net = RecurrentVSR().eval()
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            net(torch.rand(1, 2, 3, 10, 10))
