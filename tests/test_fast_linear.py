"""tinylm_core.fast_linear (notebook 07): the row-count Linear against nn.Linear, and
use_fast_linear swapping a model's layers in place."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import tiny_model

from tinylm_core.fast_linear import Linear, use_fast_linear

ATOL = 1e-5


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "shape", [(1, 1), (2, 1), (1, 4), (4, 1), (2, 8), (16, 1), (17, 1), (3, 50)]
)
def test_linear_equals_nn_linear_on_every_path(shape, bias):
    # 1 row and > 16 rows take F.linear, 2..16 rows compute (W x^T)^T; all must agree, forward
    # and backward, with a (B, T, C) input as the model passes it.
    torch.manual_seed(0)
    ours = Linear(24, 40, bias=bias)
    reference = nn.Linear(24, 40, bias=bias)
    reference.load_state_dict(ours.state_dict())  # same parameter names and shapes
    x = torch.randn(*shape, 24, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), reference(x_ref)
    assert y.shape == y_ref.shape == (*shape, 40)
    assert y.is_contiguous()
    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=1e-5)
    weights = torch.randn_like(y)
    (y * weights).sum().backward()
    (y_ref * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad, atol=ATOL, rtol=1e-5)
    if bias:
        torch.testing.assert_close(ours.bias.grad, reference.bias.grad, atol=ATOL, rtol=1e-5)


def test_linear_takes_non_contiguous_input():
    torch.manual_seed(0)
    layer = Linear(8, 5)
    x = torch.randn(8, 4).T  # (4, 8), not contiguous
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    x3 = torch.randn(3, 8, 2).transpose(1, 2)  # (3, 2, 8): 6 rows, not contiguous
    torch.testing.assert_close(layer(x3), F.linear(x3, layer.weight, layer.bias))


def test_use_fast_linear_swaps_in_place_and_keeps_everything():
    model = tiny_model()
    ids = torch.randint(0, 37, (3, 10))
    before = model(ids).logits
    state = {k: v.clone() for k, v in model.state_dict().items()}
    parameters = [id(p) for p in model.parameters()]
    assert use_fast_linear(model) is model
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is Linear for m in linears)
    assert [id(p) for p in model.parameters()] == parameters  # nothing copied
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert model.lm_head.weight is model.token_embedding.weight  # still tied
    torch.testing.assert_close(model(ids).logits, before, atol=1e-5, rtol=1e-5)


def test_use_fast_linear_leaves_subclasses_alone():
    class Special(nn.Linear):
        pass

    model = nn.Sequential(nn.Linear(4, 4), Special(4, 4))
    use_fast_linear(model)
    assert type(model[0]) is Linear and type(model[1]) is Special


def test_generator_uses_fast_linear_on_the_cpu():
    from tinylm_core import Generator

    model = tiny_model()
    Generator(model)
    assert all(type(m) is Linear for m in model.modules() if isinstance(m, nn.Linear))
