"""gradflow.nn: the Module API (always) and every layer against PyTorch (when installed)."""

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.nn import init


def _np(t):
    return t.detach().numpy()


# ====================================================================== Module API (no torch)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2, bias=False)
        self.register_buffer("scale", gf.ones(2))
        self.register_buffer("scratch", gf.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.bn(self.fc1(x)).relu()) * self.scale


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == [
        "scale", "scratch", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["fc1", "bn", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "fc2"]
    assert net.fc2.bias is None and "bias" in net.fc2._parameters
    assert len(list(net.children())) == 3 and len(list(net.modules())) == 4
    assert net.get_submodule("bn") is net.bn
    assert net.get_parameter("fc1.weight") is net.fc1.weight


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(gf.zeros(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = gf.zeros(2)
    m.w = None
    assert m.w is None
    m.register_buffer("b", gf.zeros(1))
    m.b = gf.ones(1)
    assert m._buffers["b"].item() == 1
    with pytest.raises(TypeError, match="as buffer 'b'"):
        m.b = 3
    del m.b
    assert "b" not in m._buffers
    with pytest.raises(ValueError, match="contain"):
        m.register_buffer("a.b", gf.zeros(1))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Bad(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(gf.zeros(1))
        Bad()


def test_parameter_basics():
    p = nn.Parameter(gf.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf and isinstance(p, gf.Tensor)
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert str(p) == repr(p)
    assert not nn.Parameter(gf.zeros(1), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(gf.tensor([1, 2]))
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q is not p and np.array_equal(_np(q), _np(p))
    # ops on a Parameter return plain tensors
    assert type(p * 2) is gf.Tensor


def test_state_dict_round_trip_and_strict_errors():
    gf.manual_seed(0)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                        "fc2.weight"]  # own entries first, then children's, as PyTorch
    assert not any(t.requires_grad for t in sd.values())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (k, v), w in zip(sd.items(), b.state_dict().values()):
        assert np.array_equal(_np(v), _np(w)), k
    assert isinstance(b.fc1.weight, nn.Parameter)
    bad = dict(sd)
    del bad["fc1.bias"]
    bad["extra"] = gf.zeros(1)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "fc1.bias"') as e:
        b.load_state_dict(bad)
    assert 'Unexpected key(s) in state_dict: "extra"' in str(e.value)
    res = b.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["extra"]
    bad = dict(sd)
    bad["fc2.weight"] = gf.zeros(3, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc2.weight: copying a param with "
                                           r"shape \(3, 3\) from checkpoint, the shape in "
                                           r"current model is \(2, 3\)"):
        b.load_state_dict(bad, strict=False)


def test_train_eval_zero_grad_requires_grad():
    net = Net()
    assert net.training and net.bn.training
    assert net.eval() is net and not net.bn.training
    net.train()
    assert net.fc1.training
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")
    net(gf.randn(5, 4)).sum().backward()
    assert net.fc1.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert net.fc1.weight.grad.abs().sum().item() == 0
    net.zero_grad()
    assert net.fc1.weight.grad is None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_to_dtype_keeps_parameter_identity():
    net = Net()
    w = net.fc1.weight
    net(gf.randn(3, 4)).sum().backward()
    assert net.double() is net
    assert net.fc1.weight is w and w.dtype == gf.float64 and w.grad.dtype == gf.float64
    assert net.bn.running_mean.dtype == gf.float64
    assert net.bn.num_batches_tracked.dtype == gf.int64  # integer buffers keep their dtype
    net.to(gf.float32)
    assert w.dtype == gf.float32 and net.scale.dtype == gf.float32
    net.to("cpu")
    net.float().cpu()
    assert net(gf.randn(3, 4)).dtype == gf.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(gf.int64)


def test_apply_and_init():
    net = Net()

    def fill(m):
        if isinstance(m, nn.Linear):
            init.constant_(m.weight, 0.5)

    assert net.apply(fill) is net
    assert np.all(_np(net.fc2.weight) == 0.5)


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    y = lin(gf.ones(1, 2))
    assert np.allclose(_np(y), _np(lin.bias) + 1) and calls == [(1, 2)]
    h1.remove()
    h2.remove()
    y = lin(gf.ones(1, 2))
    assert np.allclose(_np(y), _np(lin(gf.ones(1, 2))))
    assert len(calls) == 1


def test_full_backward_hook():
    lin = nn.Linear(3, 2)
    seen = {}

    def hook(m, grad_input, grad_output):
        seen["in"], seen["out"] = grad_input, grad_output
        return (grad_input[0] * 2,) if grad_input[0] is not None else None

    h = lin.register_full_backward_hook(hook)
    x = gf.randn(4, 3, requires_grad=True)
    y = lin(x)
    g = gf.randn(4, 2)
    y.backward(g)
    assert np.allclose(_np(seen["out"][0]), _np(g))
    expected = _np(g) @ _np(lin.weight)
    assert np.allclose(_np(seen["in"][0]), expected, atol=1e-6)
    assert np.allclose(_np(x.grad), 2 * expected, atol=1e-6)
    # the input does not require grad: the hook still runs, with grad_input (None,)
    seen.clear()
    lin(gf.randn(4, 3)).sum().backward()
    assert seen["in"] == (None,) and seen["out"][0].shape == (4, 2)
    h.remove()
    seen.clear()
    lin(gf.randn(4, 3)).sum().backward()
    assert seen == {}


def test_repr_nested():
    m = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3, bias=False),
                                  block=nn.Sequential(nn.ReLU(inplace=True), nn.Dropout(0.2))))
    assert repr(m) == (
        "Sequential(\n"
        "  (conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), bias=False)\n"
        "  (block): Sequential(\n"
        "    (0): ReLU(inplace=True)\n"
        "    (1): Dropout(p=0.2, inplace=False)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"
    assert repr(nn.Tanh()) == "Tanh()"


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and seq(gf.randn(5, 2)).shape == (5, 1)
    del seq[1]
    assert [k for k in seq._modules] == ["0", "1", "2"]
    with pytest.raises(IndexError):
        seq[10]
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8
    assert isinstance(ml[1:], nn.ModuleList) and len(ml[1:]) == 3
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    md["c"] = nn.Tanh()
    assert list(md.keys()) == ["a", "b", "c"] and "a" in md and len(md) == 3
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]


def test_deepcopy_module():
    net = Net()
    twin = copy.deepcopy(net)
    assert twin.fc1.weight is not net.fc1.weight
    assert np.array_equal(_np(twin.fc1.weight), _np(net.fc1.weight))
    with gf.no_grad():
        twin.fc1.weight.fill_(0)
    assert _np(net.fc1.weight).any()


def test_clip_grad_and_vector_conversion():
    p1 = nn.Parameter(gf.tensor([3.0, 0.0]))
    p2 = nn.Parameter(gf.tensor([[4.0]]))
    p1.grad, p2.grad = gf.tensor([3.0, 0.0]), gf.tensor([[4.0]])
    total = nn.utils.clip_grad_norm_([p1, p2], 1.0)
    assert abs(total.item() - 5.0) < 1e-6
    assert np.allclose(_np(p1.grad), [0.6, 0.0], atol=1e-5)
    p1.grad, p2.grad = gf.tensor([3.0, -7.0]), gf.tensor([[4.0]])
    assert nn.utils.clip_grad_norm_([p1, p2], 100.0, norm_type=math.inf).item() == 7.0
    p1.grad = gf.tensor([float("nan"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p1], 1.0, error_if_nonfinite=True)
    p1.grad = gf.tensor([3.0, -7.0])
    nn.utils.clip_grad_value_([p1], 2.0)
    assert np.array_equal(_np(p1.grad), [2.0, -2.0])
    vec = nn.utils.parameters_to_vector([p1, p2])
    assert np.array_equal(_np(vec), [3.0, 0.0, 4.0])
    nn.utils.vector_to_parameters(gf.tensor([1.0, 2.0, 3.0]), [p1, p2])
    assert np.array_equal(_np(p2), [[3.0]])


def test_init_functions():
    gf.manual_seed(0)
    w = gf.empty(300, 200)
    assert init._calculate_fan_in_and_fan_out(gf.empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(gf.empty(3))
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    init.xavier_uniform_(w)
    bound = math.sqrt(6 / 500)
    assert _np(w).max() <= bound and abs(_np(w).std() - bound / math.sqrt(3)) < 0.02 * bound
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(_np(w).std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    init.trunc_normal_(w, std=1.0, a=-1.0, b=1.5)
    assert _np(w).min() >= -1.0 and _np(w).max() <= 1.5
    q = init.orthogonal_(gf.empty(4, 6), gain=2.0)
    assert np.allclose(_np(q) @ _np(q).T, 4 * np.eye(4), atol=1e-5)
    assert np.all(_np(init.zeros_(gf.empty(3))) == 0)


def test_layer_errors():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(gf.randn(2, 3))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="linear: input of shape"):
        nn.Linear(3, 2)(gf.randn(2, 4))
    with pytest.raises(IndexError, match="index out of range"):
        nn.Embedding(3, 2)(gf.tensor([3]))


def test_embedding_padding_and_from_pretrained():
    emb = nn.Embedding(5, 3, padding_idx=1)
    assert np.all(_np(emb.weight)[1] == 0)
    idx = gf.tensor([[1, 2], [2, 4]])
    emb(idx).sum().backward()
    g = _np(emb.weight.grad)
    assert np.all(g[1] == 0) and np.all(g[2] == 2) and np.all(g[4] == 1) and np.all(g[0] == 0)
    pre = nn.Embedding.from_pretrained(gf.eye(3))
    assert not pre.weight.requires_grad
    assert np.array_equal(_np(pre(gf.tensor([2]))), [[0, 0, 1]])


def test_dropout_modes():
    gf.manual_seed(0)
    d = nn.Dropout(0.25)
    x = gf.ones(20000)
    y = _np(d(x))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    d.eval()
    assert d(x) is x
    d2 = nn.Dropout2d(0.5)
    y = _np(d2(gf.ones(8, 50, 2, 2)))
    assert np.all(y.reshape(8, 50, 4).std(axis=2) == 0)  # whole channels


def test_softmax_default_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.Softmax()(gf.randn(2, 3))
    assert np.allclose(_np(y).sum(1), 1)


def test_one_hot_and_normalize():
    oh = F.one_hot(gf.tensor([0, 2, 1]))
    assert oh.dtype == gf.int64 and np.array_equal(_np(oh), np.eye(3)[[0, 2, 1]])
    assert F.one_hot(gf.tensor([1]), num_classes=4).shape == (1, 4)
    with pytest.raises(RuntimeError, match="Class values"):
        F.one_hot(gf.tensor([5]), 3)
    v = F.normalize(gf.tensor([[3.0, 4.0]]))
    assert np.allclose(_np(v), [[0.6, 0.8]])


def test_small_training_loop_decreases_loss():
    gf.manual_seed(0)
    x = gf.randn(64, 4)
    y = (x.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = gf.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


# ====================================================================== PyTorch parity
def _torch():
    return pytest.importorskip("torch")


def _load_from_torch(ours, theirs):
    sd = {k: gf.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(sd)


def _compare(ours, theirs, *shapes, atol=1e-8, train=True, int_input=None, extra=()):
    """Forward and backward of ours (float64) against theirs on the same inputs."""
    torch = _torch()
    ours.double().train(train)
    theirs.double().train(train)
    _load_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    if int_input is not None:
        xs = [int_input]
    else:
        xs = [rng.standard_normal(s) for s in shapes]
    t_in = [torch.tensor(x, requires_grad=int_input is None) for x in xs]
    g_in = [gf.tensor(x, requires_grad=int_input is None) for x in xs]
    t_out = theirs(*t_in, *extra)
    g_out = ours(*g_in, *extra)
    assert tuple(g_out.shape) == tuple(t_out.shape)
    np.testing.assert_allclose(_np(g_out), t_out.detach().numpy(), atol=atol, rtol=1e-6)
    up = rng.standard_normal(tuple(t_out.shape))
    t_out.backward(torch.tensor(up))
    g_out.backward(gf.tensor(up))
    if int_input is None:
        for a, b in zip(g_in, t_in):
            np.testing.assert_allclose(_np(a.grad), b.grad.numpy(), atol=atol, rtol=1e-6)
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(_np(p.grad), t_params[name].grad.numpy(), atol=atol,
                                   rtol=1e-6, err_msg=name)
    for (name, b), tb in zip(ours.named_buffers(), theirs.buffers()):
        np.testing.assert_allclose(_np(b), tb.numpy(), atol=atol, err_msg=name)


LAYERS = [
    ("Linear", lambda n: n.Linear(5, 3), [(4, 5)]),
    ("Linear-nobias-3d", lambda n: n.Linear(5, 3, bias=False), [(2, 4, 5)]),
    ("Identity", lambda n: n.Identity(7), [(2, 3)]),
    ("Flatten", lambda n: n.Flatten(), [(2, 3, 4)]),
    ("Unflatten", lambda n: n.Unflatten(1, (2, 3)), [(4, 6)]),
    ("Conv2d", lambda n: n.Conv2d(3, 4, 3, stride=2, padding=1), [(2, 3, 7, 7)]),
    ("Conv2d-groups-dil", lambda n: n.Conv2d(4, 6, (3, 2), padding=(2, 1), dilation=2,
                                             groups=2, bias=False), [(2, 4, 6, 5)]),
    ("Conv2d-same", lambda n: n.Conv2d(2, 3, 4, padding="same"), [(1, 2, 5, 5)]),
    ("Conv2d-reflect", lambda n: n.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"),
     [(2, 2, 5, 6)]),
    ("Conv2d-replicate-same", lambda n: n.Conv2d(2, 3, 4, padding="same",
                                                 padding_mode="replicate"), [(1, 2, 5, 5)]),
    ("Conv2d-circular", lambda n: n.Conv2d(2, 3, 3, stride=2, padding=2,
                                           padding_mode="circular"), [(1, 2, 6, 5)]),
    ("ConvTranspose2d", lambda n: n.ConvTranspose2d(4, 3, 3, stride=2, padding=1,
                                                    output_padding=1), [(2, 4, 4, 5)]),
    ("ConvTranspose2d-groups", lambda n: n.ConvTranspose2d(4, 6, 2, stride=2, groups=2,
                                                           dilation=1), [(1, 4, 3, 3)]),
    ("MaxPool2d", lambda n: n.MaxPool2d(2), [(2, 3, 6, 6)]),
    ("MaxPool2d-ceil", lambda n: n.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     [(1, 2, 6, 7)]),
    ("AvgPool2d", lambda n: n.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
     [(2, 2, 7, 6)]),
    ("AdaptiveAvgPool2d", lambda n: n.AdaptiveAvgPool2d((3, 2)), [(2, 3, 7, 5)]),
    ("AdaptiveMaxPool2d", lambda n: n.AdaptiveMaxPool2d(3), [(2, 3, 7, 5)]),
    ("Upsample-nearest", lambda n: n.Upsample(scale_factor=2), [(1, 2, 3, 4)]),
    ("Upsample-bilinear", lambda n: n.Upsample(size=(5, 7), mode="bilinear",
                                               align_corners=False), [(1, 2, 3, 4)]),
    ("Upsample-bilinear-ac", lambda n: n.Upsample(scale_factor=2, mode="bilinear",
                                                  align_corners=True), [(1, 2, 3, 4)]),
    ("BatchNorm1d", lambda n: n.BatchNorm1d(4), [(8, 4)]),
    ("BatchNorm1d-3d", lambda n: n.BatchNorm1d(4, momentum=None), [(3, 4, 5)]),
    ("BatchNorm2d", lambda n: n.BatchNorm2d(3), [(4, 3, 5, 5)]),
    ("BatchNorm2d-noaffine", lambda n: n.BatchNorm2d(3, affine=False), [(4, 3, 2, 2)]),
    ("BatchNorm2d-notrack", lambda n: n.BatchNorm2d(3, track_running_stats=False),
     [(4, 3, 2, 2)]),
    ("LayerNorm", lambda n: n.LayerNorm(5), [(3, 4, 5)]),
    ("LayerNorm-2d", lambda n: n.LayerNorm([4, 5], elementwise_affine=True), [(3, 4, 5)]),
    ("LayerNorm-nobias", lambda n: n.LayerNorm(5, bias=False), [(2, 5)]),
    ("GroupNorm", lambda n: n.GroupNorm(2, 4), [(3, 4, 3, 3)]),
    ("GroupNorm-noaffine", lambda n: n.GroupNorm(4, 4, affine=False), [(3, 4, 3)]),
    ("BatchNorm1d-nobias", lambda n: n.BatchNorm1d(4, bias=False), [(8, 4)]),
    ("InstanceNorm2d", lambda n: n.InstanceNorm2d(3), [(2, 3, 4, 4)]),
    ("InstanceNorm2d-affine-track", lambda n: n.InstanceNorm2d(3, affine=True,
                                                               track_running_stats=True),
     [(2, 3, 4, 4)]),
    ("ReLU", lambda n: n.ReLU(), [(3, 4)]),
    ("ReLU6", lambda n: n.ReLU6(), [(3, 4)]),
    ("LeakyReLU", lambda n: n.LeakyReLU(0.2), [(3, 4)]),
    ("PReLU", lambda n: n.PReLU(), [(3, 4)]),
    ("PReLU-channels", lambda n: n.PReLU(3, init=0.1), [(2, 3, 4)]),
    ("ELU", lambda n: n.ELU(0.7), [(3, 4)]),
    ("GELU", lambda n: n.GELU(), [(3, 4)]),
    ("GELU-tanh", lambda n: n.GELU("tanh"), [(3, 4)]),
    ("SiLU", lambda n: n.SiLU(), [(3, 4)]),
    ("Sigmoid", lambda n: n.Sigmoid(), [(3, 4)]),
    ("Tanh", lambda n: n.Tanh(), [(3, 4)]),
    ("Softplus", lambda n: n.Softplus(beta=2.0, threshold=1.0), [(3, 4)]),
    ("Softmax", lambda n: n.Softmax(dim=1), [(3, 4)]),
    ("LogSoftmax", lambda n: n.LogSoftmax(dim=-1), [(3, 4)]),
]


@pytest.mark.parametrize("name,make,shapes", LAYERS, ids=[x[0] for x in LAYERS])
def test_layer_matches_torch(name, make, shapes):
    torch = _torch()
    theirs = make(torch.nn)
    ours = make(nn)
    assert repr(ours) == repr(theirs)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    _compare(ours, theirs, *shapes)
    if "Norm" in name and "Layer" not in name and "Group" not in name:
        _compare(ours, theirs, *shapes, train=False)  # eval uses running statistics


def test_batchnorm_running_stats_over_steps():
    torch = _torch()
    for momentum in (0.1, None):
        theirs = torch.nn.BatchNorm2d(3, momentum=momentum).double()
        ours = nn.BatchNorm2d(3, momentum=momentum).double()
        rng = np.random.default_rng(1)
        for _ in range(4):
            x = rng.standard_normal((4, 3, 2, 2)) * 3 + 1
            theirs(torch.tensor(x))
            ours(gf.tensor(x))
        for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-10, err_msg=k)


def test_dropout_matches_torch_in_eval_and_p0():
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((3, 4))
    for make in (lambda n: n.Dropout(0.0), lambda n: n.Dropout(0.3).eval(),
                 lambda n: n.Dropout2d(0.3).eval()):
        if isinstance(make(nn), nn.Dropout2d):
            x = x.reshape(1, 3, 2, 2)
        assert repr(make(nn)) == repr(make(torch.nn))
        np.testing.assert_allclose(_np(make(nn)(gf.tensor(x))),
                                   make(torch.nn)(torch.tensor(x)).numpy())


def test_embedding_matches_torch():
    torch = _torch()
    idx = np.array([[0, 3, 2], [2, 2, 4]])
    for kw in ({}, {"padding_idx": 2}, {"scale_grad_by_freq": True},
               {"padding_idx": 0, "scale_grad_by_freq": True}):
        theirs = torch.nn.Embedding(5, 3, **kw)
        ours = nn.Embedding(5, 3, **kw)
        assert repr(ours) == repr(theirs)
        _compare(ours, theirs, int_input=idx, extra=())
    # _compare passed numpy int64 through gf.tensor/torch.tensor


def test_maxunpool_matches_torch():
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 6))
    tp = torch.nn.MaxPool2d(2, return_indices=True)
    op = nn.MaxPool2d(2, return_indices=True)
    ty, ti = tp(torch.tensor(x))
    oy, oi = op(gf.tensor(x))
    assert np.array_equal(_np(oi), ti.numpy())
    tu = torch.nn.MaxUnpool2d(2)
    ou = nn.MaxUnpool2d(2)
    assert repr(ou) == repr(tu)
    np.testing.assert_allclose(_np(ou(oy, oi)), tu(ty, ti).numpy())
    np.testing.assert_allclose(_np(ou(oy, oi, output_size=(5, 7))),
                               tu(ty, ti, output_size=(5, 7)).numpy())


def test_conv_transpose_output_size_matches_torch():
    torch = _torch()
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    ours = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    _load_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    for size in ((7, 7), (8, 8), (1, 3, 8, 7)):
        np.testing.assert_allclose(_np(ours(gf.tensor(x), output_size=size)),
                                   theirs(torch.tensor(x), output_size=size).detach().numpy(),
                                   atol=1e-10)
    with pytest.raises(ValueError, match="requested an output size of"):
        ours(gf.tensor(x), output_size=(10, 10))


INIT_CASES = [
    ("Linear", lambda n: n.Linear(400, 300)),
    ("Conv2d", lambda n: n.Conv2d(32, 64, 3)),
    ("Conv2d-groups", lambda n: n.Conv2d(32, 64, 5, groups=4)),
    ("ConvTranspose2d", lambda n: n.ConvTranspose2d(64, 32, 4)),
    ("Embedding", lambda n: n.Embedding(300, 200)),
    ("BatchNorm2d", lambda n: n.BatchNorm2d(8)),
    ("LayerNorm", lambda n: n.LayerNorm(8)),
    ("GroupNorm", lambda n: n.GroupNorm(2, 8)),
    ("PReLU", lambda n: n.PReLU(4)),
]


@pytest.mark.parametrize("name,make", INIT_CASES, ids=[c[0] for c in INIT_CASES])
def test_initial_parameter_statistics_match_torch(name, make):
    torch = _torch()
    torch.manual_seed(0)
    gf.manual_seed(0)
    theirs, ours = make(torch.nn), make(nn)
    t_params = dict(theirs.named_parameters())
    assert list(t_params) == [n for n, _ in ours.named_parameters()]
    for n, p in ours.named_parameters():
        a, b = _np(p), t_params[n].detach().numpy()
        assert a.shape == b.shape and a.dtype == b.dtype
        if b.std() == 0:
            assert np.array_equal(a, b), n
            continue
        n_el = a.size  # tolerances: 5 standard errors of the sample mean / std
        assert abs(a.mean() - b.mean()) < 5 * b.std() * math.sqrt(2 / n_el), n
        assert abs(a.std() - b.std()) < 5 * b.std() / math.sqrt(n_el), n
        if name != "Embedding":  # uniform: the same bounds
            spread = b.max() - b.min()
            assert abs(a.max() - b.max()) < 0.05 * spread, n
            assert abs(a.min() - b.min()) < 0.05 * spread, n


def test_functional_matches_torch():
    torch = _torch()
    tF = torch.nn.functional
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for name, args in (("relu", ()), ("relu6", ()), ("hardtanh", (-0.5, 0.5)),
                       ("leaky_relu", (0.1,)), ("elu", (1.5,)), ("gelu", ()), ("silu", ()),
                       ("softplus", (2.0, 3.0)), ("logsigmoid", ()), ("sigmoid", ()),
                       ("tanh", ()), ("softmax", (1,)), ("log_softmax", (2,)),
                       ("normalize", (2.0, 1))):
        np.testing.assert_allclose(_np(getattr(F, name)(gf.tensor(x), *args)),
                                   getattr(tF, name)(torch.tensor(x), *args).numpy(),
                                   atol=1e-12, err_msg=name)
    w = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_allclose(_np(F.linear(gf.tensor(x), gf.tensor(w))),
                               tF.linear(torch.tensor(x), torch.tensor(w)).numpy(), atol=1e-12)
    idx = np.array([[1, 0, 3]])
    np.testing.assert_allclose(_np(F.one_hot(gf.tensor(idx), 5)),
                               tF.one_hot(torch.tensor(idx), 5).numpy())
    y = gf.tensor(x)
    F.relu(y, inplace=True)
    assert np.array_equal(_np(y), np.maximum(x, 0))
