"""small-cnn's channels-last layout: the same network and initialisation as the default layout, its
tensors channels-last, its outputs equal up to summation order, and repeatable."""

from __future__ import annotations

import pytest
import torch

from xalbench.models.small_cnn import SmallCNN


@pytest.mark.parametrize(("dims", "shape", "fmt"), [(2, (3, 1, 16, 16), torch.channels_last),
                                                    (3, (3, 1, 8, 12, 12), torch.channels_last_3d)])
def test_channels_last_is_the_same_network_in_another_layout(dims: int, shape: tuple[int, ...],
                                                              fmt: torch.memory_format) -> None:
    def build(channels_last: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        return SmallCNN({"width": 4, "n_blocks": 3, "channels_last": channels_last}).build(1, 3, dims).eval()

    plain, last = build(False), build(True)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), last.state_dict().values(), strict=True))
    convs = [m.weight for m in last.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d)]
    assert convs and all(w.is_contiguous(memory_format=fmt) for w in convs)
    second = [m.weight for m in plain.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d)][1]
    assert not second.is_contiguous(memory_format=fmt)  # (the first, one input channel, is both)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    assert last.features(x).is_contiguous(memory_format=fmt)
    torch.testing.assert_close(last(x), plain(x), rtol=1e-4, atol=1e-5)
    assert torch.equal(last(x), last(x))


def test_a_state_dict_moves_between_layouts() -> None:
    torch.manual_seed(0)
    source = SmallCNN({"width": 4, "n_blocks": 2}).build(1, 2, 2)
    target = SmallCNN({"width": 4, "n_blocks": 2, "channels_last": True}).build(1, 2, 2)
    target.load_state_dict(source.state_dict())
    assert target.body[4].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(target.eval()(x), source.eval()(x), rtol=1e-4, atol=1e-5)
