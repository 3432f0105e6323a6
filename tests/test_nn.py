"""ember.nn: Module machinery, every layer's shapes / repr / state_dict / init, forward
numerics against NumPy, float64 gradient checks, and bad arguments."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember import models
from ember.nn import init

from helpers import assert_close, gradcheck


def _np(t):
    return t.detach().numpy(force=True)


# ---------------------------------------------------------------- Module machinery
# (registration, traversal, repr and argument errors are bookkeeping in Python with no
# kernel or storage involved, so those tests run on the CPU only)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2)
        self.scale = nn.Parameter(ember.ones(1))
        self.register_buffer("count", ember.zeros(1))
        self.register_buffer("scratch", ember.zeros(2), persistent=False)
        self.plain = 5

    def forward(self, x):
        return self.fc2(nn.functional.relu(self.bn(self.fc1(x)))) * self.scale


def test_registration_and_traversal():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert [n for n, _ in m.named_children()] == ["fc1", "bn", "fc2"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "bn", "fc2"]
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch", "bn.running_mean", "bn.running_var",
                                                 "bn.num_batches_tracked"]
    assert m.plain == 5 and "plain" not in m._parameters
    # reassigning a name moves it between kinds
    m.fc1 = nn.Identity()
    assert "fc1.weight" not in dict(m.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(seq.modules())) == 3  # Sequential, Linear (once), ReLU
    # tied weight between two distinct modules
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    assert len(list(nn.Sequential(a, b).parameters())) == 3


def test_setattr_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        m.weight = ember.zeros(2, 2)
    m.bias = None
    assert m.bias is None and "bias" not in dict(m.named_parameters())

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ember.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(KeyError, match="contain"):
        nn.Module().register_buffer("a.b", ember.zeros(1))
    with pytest.raises(TypeError, match="Parameter or None"):
        nn.Module().register_parameter("w", ember.zeros(1))


def test_train_eval_and_zero_grad(device):
    m = Net().to(device)
    assert m.training and m.bn.training
    m.eval()
    assert not m.training and not m.bn.training and not m.fc2.training
    m.train()
    assert m.bn.training
    for p in m.parameters():
        p.grad = ember.ones(p.shape, device=device)
    m.zero_grad(set_to_none=False)
    assert all(np.all(_np(p.grad) == 0) and p.grad.device == device for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_to_dtype_keeps_parameter_identity(device):
    m = Net().to(device)
    params = list(m.parameters())
    m.to(ember.float64)
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == ember.float64 and p.device == device for p in m.parameters())
    assert m.bn.running_mean.device == device and m.bn.num_batches_tracked.device == device
    assert m.bn.running_mean.dtype == ember.float64
    assert m.bn.num_batches_tracked.dtype == ember.int64  # integer buffers keep their dtype
    m.float()
    assert m.fc1.weight.dtype == ember.float32
    with pytest.raises(TypeError, match="floating point"):
        m.to(ember.int64)


def test_state_dict_and_load(device):
    m = Net().to(device)
    sd = m.state_dict()
    assert all(t.device == device for t in sd.values())
    assert list(sd) == ["scale", "count", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean",
                        "bn.running_var", "bn.num_batches_tracked", "fc2.weight", "fc2.bias"]
    assert "scratch" not in sd  # non-persistent buffer
    assert not any(t.requires_grad for t in sd.values())
    for dst in ("cpu", device):  # loads onto either device, whichever the source's
        m2 = Net().to(dst)
        m2.load_state_dict(sd)
        for k, v in m2.state_dict().items():
            assert v.device == dst
            np.testing.assert_array_equal(_np(v), _np(sd[k]))
    # load copies values, it does not alias the source
    before = _np(m2.fc1.weight).copy()
    sd["fc1.weight"].fill_(3.0)
    np.testing.assert_array_equal(_np(m2.fc1.weight), before)
    # and back: a CPU state dict into the model on device
    m.load_state_dict(Net().state_dict())
    assert all(t.device == device for t in m.state_dict().values())


def test_load_state_dict_errors():
    m = Net()
    sd = m.state_dict()
    bad = OrderedDict(sd)
    del bad["fc1.bias"]
    bad["extra.weight"] = ember.zeros(1)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra.weight"') as e:
        m.load_state_dict(bad)
    assert 'Missing key(s) in state_dict: "fc1.bias"' in str(e.value)
    missing, unexpected = m.load_state_dict(bad, strict=False)
    assert missing == ["fc1.bias"] and unexpected == ["extra.weight"]
    shaped = OrderedDict(sd)
    shaped["fc2.weight"] = ember.zeros(5, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc2.weight: copying a param with shape \(5, 3\)"):
        m.load_state_dict(shaped)
    with pytest.raises(RuntimeError, match="size mismatch"):
        m.load_state_dict(shaped, strict=False)
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([1, 2])


def test_repr_like_torch():
    m = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(8, 10, bias=False))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=8, out_features=10, bias=False)\n"
        ")")
    assert repr(nn.BatchNorm2d(4)) == "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.Conv2d(4, 8, (3, 5), stride=2, dilation=2, groups=4, bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), dilation=(2, 2), groups=4, bias=False)"
    assert repr(nn.Conv1d(2, 3, 3, padding="same")) == "Conv1d(2, 3, kernel_size=(3,), stride=(1,), padding=same)"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25, inplace=False)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.Parameter(ember.zeros(1))).startswith("Parameter containing:\ntensor(")


def test_sequential_and_modulelist():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    assert isinstance(s[1:], nn.Sequential) and list(s[1:]) == [b, c]
    with pytest.raises(IndexError, match="out of range"):
        s[3]
    named = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert [n for n, _ in named.named_children()] == ["fc", "act"] and named.fc is a
    ml = nn.ModuleList([a, b])
    ml.append(c)
    assert len(ml) == 3 and ml[2] is c and [n for n, _ in ml.named_parameters()] == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
    del ml[0]
    assert ml[0] is b and len(ml) == 2
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        ml(ember.zeros(1))


# ---------------------------------------------------------------- init

def test_default_inits_match_torch_bounds():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = _np(lin.weight), _np(lin.bias)
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-a, a) has std a / sqrt(3); 120k samples pin it to well under 1%
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    conv = nn.Conv2d(16, 32, 3, groups=2)
    fan_in = 16 // 2 * 9
    assert _np(conv.weight).shape == (32, 8, 3, 3)
    assert np.abs(_np(conv.weight)).max() <= 1 / math.sqrt(fan_in)
    assert np.abs(_np(conv.bias)).max() <= 1 / math.sqrt(fan_in)
    bn = nn.BatchNorm2d(5)
    for t, v in ((bn.weight, 1), (bn.bias, 0), (bn.running_mean, 0), (bn.running_var, 1)):
        np.testing.assert_array_equal(_np(t), np.full(5, v, np.float32))
    assert bn.num_batches_tracked.item() == 0 and bn.num_batches_tracked.shape == ()


def test_init_functions(device):
    t = ember.empty(200, 300, device=device)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(_np(t).std() - math.sqrt(2.0 / 200)) < 0.02 * math.sqrt(2.0 / 200)
    init.kaiming_uniform_(t, nonlinearity="relu")
    assert np.abs(_np(t)).max() <= math.sqrt(6.0 / 300)
    init.xavier_uniform_(t, gain=2.0)
    assert np.abs(_np(t)).max() <= 2.0 * math.sqrt(6.0 / 500)
    init.xavier_normal_(t)
    assert abs(_np(t).std() - math.sqrt(2.0 / 500)) < 0.02 * math.sqrt(2.0 / 500)
    init.normal_(t, 3.0, 0.5)
    assert abs(_np(t).mean() - 3.0) < 0.01 and abs(_np(t).std() - 0.5) < 0.01
    init.uniform_(t, -2, -1)
    assert _np(t).min() >= -2 and _np(t).max() < -1
    init.constant_(t, 0.25)
    assert np.all(_np(t) == 0.25)
    init.zeros_(t)
    assert not _np(t).any()
    init.ones_(t)
    assert np.all(_np(t) == 1) and t.device == device
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(2 / 6))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(ember.empty(3))
    with pytest.raises(ValueError, match="Mode fan_sideways not supported"):
        init.kaiming_uniform_(t, mode="fan_sideways")


def test_init_is_seeded(device):
    # one generator for both devices: a layer made on the device holds the CPU layer's values
    ember.manual_seed(7)
    a = _np(nn.Linear(5, 4).weight).copy()
    ember.manual_seed(7)
    lin = nn.Linear(5, 4, device=device)
    assert lin.weight.device == device and lin.bias.device == device
    np.testing.assert_array_equal(a, _np(lin.weight))
    g = ember.Generator(3)
    t1 = init.normal_(ember.empty(3, device=device), generator=g)
    t2 = init.normal_(ember.empty(3), generator=ember.Generator(3))
    assert t1.device == device
    np.testing.assert_array_equal(_np(t1), _np(t2))


# ---------------------------------------------------------------- forward numerics (NumPy references)

def _conv2d_ref(x, w, b, stride, padding, dilation, groups):
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    ho = (x.shape[2] - dilation[0] * (r - 1) - 1) // stride[0] + 1
    wo = (x.shape[3] - dilation[1] * (s - 1) - 1) // stride[1] + 1
    out = np.zeros((n, k, ho, wo))
    kg = k // groups
    for g in range(groups):
        xs = x[:, g * cg:(g + 1) * cg]
        for i in range(r):
            for j in range(s):
                patch = xs[:, :, i * dilation[0]:i * dilation[0] + stride[0] * (ho - 1) + 1:stride[0],
                           j * dilation[1]:j * dilation[1] + stride[1] * (wo - 1) + 1:stride[1]]
                out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, w[g * kg:(g + 1) * kg, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


@pytest.mark.parametrize("cfg", [
    dict(cin=3, cout=5, k=3, stride=1, padding=1, dilation=1, groups=1, bias=True, hw=(7, 6)),
    dict(cin=4, cout=6, k=(3, 2), stride=2, padding=(0, 1), dilation=1, groups=2, bias=False, hw=(9, 8)),
    dict(cin=2, cout=2, k=3, stride=1, padding=2, dilation=2, groups=1, bias=True, hw=(5, 5)),
])
def test_conv2d_matches_numpy(cfg, device):
    conv = nn.Conv2d(cfg["cin"], cfg["cout"], cfg["k"], stride=cfg["stride"], padding=cfg["padding"],
                     dilation=cfg["dilation"], groups=cfg["groups"], bias=cfg["bias"]).to(device)
    x = ember.randn(2, cfg["cin"], *cfg["hw"], device=device)
    ref = _conv2d_ref(_np(x), _np(conv.weight), None if conv.bias is None else _np(conv.bias), conv.stride,
                      conv.padding, conv.dilation, conv.groups)
    out = conv(x)
    assert out.shape == ref.shape and out.device == device
    assert_close(out, ref, n_reduce=conv.weight.shape[1] * 9)


def test_conv_same_padding_keeps_size(device):
    x = ember.randn(2, 3, 7, 8, device=device)
    conv = nn.Conv2d(3, 4, (3, 4), padding="same", dilation=(1, 2), device=device)
    y = conv(x)
    assert y.shape == (2, 4, 7, 8) and y.device == device
    # the same as padding the input by hand: dilation * (kernel - 1) split evenly, (1, 1) and (3, 3)
    xp = ember.tensor(np.pad(_np(x), ((0, 0), (0, 0), (1, 1), (3, 3))), device=device)
    ref = _conv2d_ref(_np(xp), _np(conv.weight), _np(conv.bias), (1, 1), (0, 0), (1, 2), 1)
    assert_close(y, ref, n_reduce=36)
    conv1 = nn.Conv1d(3, 5, 4, padding="same").to(device)
    assert conv1(ember.randn(2, 3, 10, device=device)).shape == (2, 5, 10)
    assert nn.Conv1d(3, 5, 4, padding="valid").to(device)(ember.randn(2, 3, 10, device=device)).shape == (2, 5, 7)


def test_conv1d_matches_numpy(device):
    conv = nn.Conv1d(3, 4, 3, stride=2, padding=1).to(device)
    x = ember.randn(2, 3, 11, device=device)
    ref = _conv2d_ref(_np(x)[:, :, None], _np(conv.weight)[:, :, None], _np(conv.bias), (1, 2), (0, 1),
                      (1, 1), 1)[:, :, 0]
    assert_close(conv(x), ref, n_reduce=9)


def test_linear_and_activations_match_numpy(device):
    lin = nn.Linear(7, 5).to(device)
    x = ember.randn(3, 4, 7, device=device)
    ref = _np(x).astype(np.float64) @ _np(lin.weight).T.astype(np.float64) + _np(lin.bias)
    assert lin(x).shape == (3, 4, 5)
    assert_close(lin(x), ref, n_reduce=7)
    xn = _np(x).astype(np.float64)
    assert_close(nn.ReLU()(x), np.maximum(xn, 0))
    assert_close(nn.LeakyReLU(0.2)(x), np.where(xn > 0, xn, 0.2 * xn))
    assert_close(nn.Sigmoid()(x), 1 / (1 + np.exp(-xn)))
    assert_close(nn.Tanh()(x), np.tanh(xn))
    from math import erf
    assert_close(nn.GELU()(x), xn * 0.5 * (1 + np.vectorize(erf)(xn / math.sqrt(2))), scale=4)
    sm = np.exp(xn - xn.max(-1, keepdims=True))
    sm /= sm.sum(-1, keepdims=True)
    assert_close(nn.Softmax(dim=-1)(x), sm, n_reduce=7)
    assert_close(nn.LogSoftmax(dim=-1)(x), np.log(sm), n_reduce=7, scale=4)
    assert nn.Identity(3, k=1)(x) is x
    assert nn.Flatten()(x).shape == (3, 28)
    assert nn.Flatten(0, 1)(x).shape == (12, 7)


def test_pools_match_numpy(device):
    x = ember.randn(2, 3, 6, 7, device=device)
    xn = _np(x).astype(np.float64)
    out = nn.MaxPool2d(2)(x)
    assert out.shape == (2, 3, 3, 3)
    ref = xn[:, :, :6, :6].reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5))
    assert_close(out, ref)
    out = nn.AvgPool2d(2, stride=1)(x)
    ref = (xn[:, :, :-1, :-1] + xn[:, :, 1:, :-1] + xn[:, :, :-1, 1:] + xn[:, :, 1:, 1:]) / 4
    assert_close(out, ref, n_reduce=4)
    assert_close(nn.AdaptiveAvgPool2d(1)(x), xn.mean(axis=(2, 3), keepdims=True), n_reduce=42)
    assert nn.MaxPool2d(3, stride=2, padding=1)(x).shape == (2, 3, 3, 4)
    assert nn.MaxPool2d(2, ceil_mode=True)(x).shape == (2, 3, 3, 4)
    assert nn.AvgPool2d(2, ceil_mode=True)(x).shape == (2, 3, 3, 4)


def test_batchnorm2d_training_and_eval(device):
    bn = nn.BatchNorm2d(3, momentum=0.2).to(device)
    init.uniform_(bn.weight, 0.5, 1.5)
    init.uniform_(bn.bias, -1, 1)
    x = ember.randn(4, 3, 5, 5, device=device) * 2 + 1
    xn = _np(x).astype(np.float64)
    mean, var = xn.mean(axis=(0, 2, 3)), xn.var(axis=(0, 2, 3))
    w, b = _np(bn.weight).astype(np.float64), _np(bn.bias).astype(np.float64)
    out = bn(x)
    ref = (xn - mean.reshape(1, 3, 1, 1)) / np.sqrt(var.reshape(1, 3, 1, 1) + 1e-5) * w.reshape(1, 3, 1, 1) \
        + b.reshape(1, 3, 1, 1)
    assert_close(out, ref, n_reduce=100, scale=4)
    # running stats: momentum-weighted, the variance unbiased (n / (n - 1))
    n = 4 * 5 * 5
    assert_close(bn.running_mean, 0.2 * mean, n_reduce=100)
    assert_close(bn.running_var, 0.8 + 0.2 * var * n / (n - 1), n_reduce=100)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    rm, rv = _np(bn.running_mean).astype(np.float64), _np(bn.running_var).astype(np.float64)
    ref = (xn - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-5) * w.reshape(1, 3, 1, 1) \
        + b.reshape(1, 3, 1, 1)
    assert_close(bn(x), ref, scale=4)
    assert bn.num_batches_tracked.item() == 1  # eval does not count


def test_batchnorm_cumulative_and_untracked(device):
    bn = nn.BatchNorm1d(2, momentum=None).to(device)
    xs = [ember.randn(6, 2, device=device) for _ in range(3)]
    for x in xs:
        bn(x)
    means = [_np(x).astype(np.float64).mean(0) for x in xs]
    assert_close(bn.running_mean, np.mean(means, axis=0), scale=4)
    assert bn.num_batches_tracked.item() == 3
    free = nn.BatchNorm1d(2, affine=False, track_running_stats=False).to(device)
    assert list(free.state_dict()) == [] and free.running_mean is None
    free.eval()  # no running stats: still normalizes with batch statistics
    x = ember.randn(5, 2, 3, device=device)
    xn = _np(x).astype(np.float64)
    ref = (xn - xn.mean(axis=(0, 2), keepdims=True)) / np.sqrt(xn.var(axis=(0, 2), keepdims=True) + 1e-5)
    assert_close(free(x), ref, n_reduce=15, scale=4)


def test_dropout_train_and_eval(device):
    d = nn.Dropout(0.5)
    x = ember.ones(200, 100, device=device)
    out = d(x)
    assert out.device == device
    y = _np(out)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.45 < (y == 0).mean() < 0.55
    d.eval()
    np.testing.assert_array_equal(_np(d(x)), _np(x))


# ---------------------------------------------------------------- losses

def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_loss_modules_match_numpy(device):
    logits = ember.randn(6, 4, device=device)
    target = ember.tensor([0, 3, 1, 1, 2, 3], device=device)
    z, t = _np(logits).astype(np.float64), _np(target)
    ls = _log_softmax(z)
    assert_close(nn.CrossEntropyLoss()(logits, target), -ls[np.arange(6), t].mean(), n_reduce=24)
    w = np.array([1.0, 2.0, 0.5, 1.5], np.float32)
    ce_w = nn.CrossEntropyLoss(weight=ember.tensor(w)).to(device)  # the weight buffer moves with .to
    assert ce_w.weight.device == device
    ref = -(w[t] * ls[np.arange(6), t]).sum() / w[t].sum()
    assert_close(ce_w(logits, target), ref, n_reduce=24)
    eps = 0.1
    ref = (-(1 - eps) * ls[np.arange(6), t] - eps / 4 * ls.sum(1)).mean()
    assert_close(nn.CrossEntropyLoss(label_smoothing=eps)(logits, target), ref, n_reduce=24)
    assert_close(nn.CrossEntropyLoss(reduction="none")(logits, target), -ls[np.arange(6), t], n_reduce=4)
    assert_close(nn.NLLLoss(reduction="sum")(ember.tensor(ls.astype(np.float32), device=device), target),
                 -ls[np.arange(6), t].sum(), n_reduce=6)
    y = ember.randn(6, 4, device=device)
    assert_close(nn.MSELoss()(logits, y), ((z - _np(y)) ** 2).mean(), n_reduce=24)
    p = ember.rand(6, 4, device=device)
    pn = _np(p).astype(np.float64)
    ref = (np.maximum(z, 0) - z * pn + np.log1p(np.exp(-np.abs(z)))).mean()
    assert_close(nn.BCEWithLogitsLoss()(logits, p), ref, n_reduce=24, scale=4)
    pw = np.array([1.0, 2.0, 3.0, 0.5], np.float32)
    ref = (-(pw * pn * np.log(1 / (1 + np.exp(-z))) + (1 - pn) * np.log(1 - 1 / (1 + np.exp(-z))))).mean()
    assert_close(nn.BCEWithLogitsLoss(pos_weight=ember.tensor(pw, device=device))(logits, p), ref, n_reduce=24,
                 scale=16)
    assert "weight" in dict(ce_w.named_buffers())


# ---------------------------------------------------------------- gradients (float64)

def _double(m, device="cpu"):
    return m.to(ember.float64).to(device)


def test_gradcheck_linear_and_mlp(device):
    lin = _double(nn.Linear(3, 2), device)
    x = ember.randn(4, 3, dtype=ember.float64, device=device, requires_grad=True)
    gradcheck(lambda x, w, b: nn.functional.linear(x, w, b), [x, lin.weight, lin.bias])
    mlp = _double(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), device)
    params = list(mlp.parameters())
    gradcheck(lambda x, *ps: mlp(x), [x] + params)


def test_gradcheck_conv_pool_bn(device):
    conv = _double(nn.Conv2d(2, 3, 3, padding=1, stride=2), device)
    x = ember.randn(2, 2, 5, 5, dtype=ember.float64, device=device, requires_grad=True)
    gradcheck(lambda x, w, b: conv(x), [x, conv.weight, conv.bias])
    bn = _double(nn.BatchNorm2d(2), device)
    x2 = ember.randn(3, 2, 3, 3, dtype=ember.float64, device=device, requires_grad=True)
    gradcheck(lambda x, w, b: bn(x), [x2, bn.weight, bn.bias], rtol=1e-4, atol=1e-5)
    net = _double(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(8, 3)), device)
    x3 = ember.randn(2, 1, 4, 4, dtype=ember.float64, device=device, requires_grad=True)
    gradcheck(lambda x, *ps: net(x), [x3] + list(net.parameters()))


def test_mlp_loss_and_gradients_match_numpy_backprop(device):
    """A two-layer MLP with cross-entropy: ember's loss and every parameter gradient equal a
    hand-written NumPy forward/backward of the same model."""
    model = _double(models.MLP(5, hidden=(7,), num_classes=3), device)
    x = ember.randn(8, 5, dtype=ember.float64, device=device)
    y = ember.tensor([0, 2, 1, 1, 0, 2, 2, 1], device=device)
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    w1, b1 = _np(model[1].weight), _np(model[1].bias)
    w2, b2 = _np(model[3].weight), _np(model[3].bias)
    xn, yn = _np(x), _np(y)
    h_pre = xn @ w1.T + b1
    h = np.maximum(h_pre, 0)
    z = h @ w2.T + b2
    ls = _log_softmax(z)
    ref_loss = -ls[np.arange(8), yn].mean()
    dz = np.exp(ls)
    dz[np.arange(8), yn] -= 1
    dz /= 8
    dw2, db2 = dz.T @ h, dz.sum(0)
    dh = dz @ w2 * (h_pre > 0)
    dw1, db1 = dh.T @ xn, dh.sum(0)
    np.testing.assert_allclose(loss.item(), ref_loss, rtol=1e-12)
    for p, ref in ((model[1].weight, dw1), (model[1].bias, db1), (model[3].weight, dw2), (model[3].bias, db2)):
        assert p.grad.device == device
        np.testing.assert_allclose(_np(p.grad), ref, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- models

def test_models_shapes_and_state_dicts(device):
    lenet = models.LeNet((8, 8)).to(device)
    out = lenet(ember.randn(3, 1, 8, 8, device=device))
    assert out.shape == (3, 10) and out.device == device
    assert lenet[7].in_features == 64 * 2 * 2
    assert models.LeNet(28)[7].in_features == 64 * 7 * 7
    assert models.LeNet((13, 10)).to(device)(ember.randn(1, 1, 13, 10, device=device)).shape == (1, 10)
    mlp = models.MLP(64, hidden=(32,)).to(device)
    assert mlp(ember.randn(4, 1, 8, 8, device=device)).shape == (4, 10)
    r = models.resnet8().to(device)
    out = r(ember.randn(2, 3, 32, 32, device=device))
    assert out.shape == (2, 10) and out.device == device
    sd = r.state_dict()
    assert "layer2.0.shortcut.1.running_var" in sd and "layer1.0.bn1.num_batches_tracked" in sd
    r20 = models.resnet20()
    assert sum(1 for m in r20.modules() if isinstance(m, models.BasicBlock)) == 9
    assert sum(p.numel() for p in r20.parameters()) == 272474  # He et al.'s 0.27M
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.ResNet(10)
    with pytest.raises(ValueError, match="at least 4x4"):
        models.LeNet(3)


@pytest.mark.parametrize("name", ["lenet", "mlp"])
def test_model_training_steps_match_float64_cpu(name, device):
    """Whole models, forward + backward + optimizer step, three times: float32 on `device`
    against the same model (same initial weights, same batches) in float64 on the CPU. Loss,
    every gradient and every updated parameter agree within float32 tolerance."""
    import copy
    from ember import optim
    ember.manual_seed(0)
    model = models.LeNet((8, 8)) if name == "lenet" else models.MLP(64, hidden=(32, 16))
    ref = copy.deepcopy(model).to(ember.float64)
    model.to(device)

    def make_opt(m):
        if name == "lenet":
            return optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
        return optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-2)

    opt, opt_ref = make_opt(model), make_opt(ref)
    rng = np.random.default_rng(0)
    for step in range(3):
        xn = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
        yn = rng.integers(0, 10, 6)
        results = []
        for m, o, dt, dev in ((model, opt, ember.float32, device), (ref, opt_ref, ember.float64, "cpu")):
            o.zero_grad()
            loss = nn.functional.cross_entropy(m(ember.tensor(xn, dtype=dt, device=dev)),
                                               ember.tensor(yn, device=dev))
            loss.backward()
            grads = [_np(p.grad) for p in m.parameters()]
            o.step()
            assert loss.device == dev and all(p.device == dev and p.dtype == dt for p in m.parameters())
            results.append((loss.item(), grads, [_np(p) for p in m.parameters()]))
        (loss, grads, params), (loss_ref, grads_ref, params_ref) = results
        assert loss == pytest.approx(loss_ref, rel=1e-5)
        for i, (g, gr, p, pr) in enumerate(zip(grads, grads_ref, params, params_ref)):
            # (float32 on the CPU uses about a quarter of this; the GPU sums in another order)
            np.testing.assert_allclose(g, gr, rtol=2e-4, atol=3e-5 * np.abs(gr).max(),
                                       err_msg=f"step {step}: gradient of parameter {i}")
            np.testing.assert_allclose(p, pr, rtol=1e-5, atol=1e-6, err_msg=f"step {step}: parameter {i}")


# ---------------------------------------------------------------- bad arguments

def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string"):
        nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        nn.Conv2d(3, 4, 0)
    with pytest.raises(ValueError, match="kernel_size must be an int or a 2-tuple"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match="in_features must be an int"):
        nn.Linear(2.5, 3)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm2d(3, momentum=2)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_bad_layer_inputs(device):
    def z(*shape):
        return ember.zeros(*shape, device=device)
    with pytest.raises(ValueError, match="does not end in in_features=3"):
        nn.Linear(3, 2, device=device)(z(4, 5))
    with pytest.raises(ValueError, match="input has 2 channels .* expected in_channels=3"):
        nn.Conv2d(3, 4, 3, device=device)(z(1, 2, 5, 5))
    with pytest.raises(ValueError, match="expected a 3D .* or 4D"):
        nn.Conv2d(3, 4, 3, device=device)(z(5, 5))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input"):
        nn.BatchNorm2d(3, device=device)(z(2, 3, 4))
    with pytest.raises(ValueError, match="expected num_features=3"):
        nn.BatchNorm1d(3, device=device)(z(2, 4))


def test_deepcopy_makes_independent_parameters(device):
    import copy
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).to(device)
    m2 = copy.deepcopy(m)
    assert isinstance(m2[0].weight, nn.Parameter) and m2[0].weight.requires_grad
    assert all(t.device == device for t in list(m2.parameters()) + list(m2.buffers()))
    np.testing.assert_array_equal(_np(m2[0].weight), _np(m[0].weight))
    with ember.no_grad():
        m2[0].weight.fill_(0.0)
    assert np.any(_np(m[0].weight) != 0)


def test_module_to_moves_parameters_and_buffers(device):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
    params = list(model.parameters())
    model.to(device)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]  # identity kept for optimizers
    assert all(p.device == device for p in model.parameters())
    assert all(b.device == device for b in model.buffers())
    out = model(ember.randn(5, 4, device=device))
    assert out.device == device and out.shape == (5, 3)
    model.to("float64")  # a dtype name is a dtype, not a device
    assert all(p.dtype == ember.float64 and p.device == device for p in model.parameters())
    model.cpu()
    assert all(t.device == "cpu" for t in list(model.parameters()) + list(model.buffers()))
