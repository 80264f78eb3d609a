"""nn.Module bookkeeping, state dicts saved atomically, initialisation, SGD and Adam (against PyTorch)."""
import os

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn, optim
from conftest import requires_torch, torch


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.score = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return F.interpolate_bilinear(self.score(self.features(x)), size=x.shape[2:])


def test_module_registers_parameters_in_order_and_modes_propagate():
    net = TinyNet()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "score.weight", "score.bias"]
    assert all(p.requires_grad for p in net.parameters())
    net.eval()
    assert not net.training and not net.features[0].training
    net.train()
    assert net.features[2].training
    assert "Conv2d(3, 4, kernel_size=(3, 3)" in repr(net)


def test_kaiming_init_has_the_right_scale():
    msn.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3)
    assert conv.weight.data.std() == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.05)
    assert np.all(conv.bias.data == 0)


def test_state_dict_round_trip_through_an_atomic_npz(tmp_path):
    msn.manual_seed(1)
    net, other = TinyNet(), TinyNet()
    path = tmp_path / "ckpt" / "model.npz"
    nn.save_state_dict(net, path)
    other.load_state_dict(nn.load_state_dict(path))
    for (_, a), (_, b) in zip(net.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert [f for f in os.listdir(path.parent)] == ["model.npz"]  # no temporary file left behind


def test_an_interrupted_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    net = TinyNet()
    path = tmp_path / "model.npz"
    nn.save_state_dict(net, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut while writing")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        nn.save_state_dict(net, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_load_state_dict_names_what_is_wrong(tmp_path):
    net = TinyNet()
    state = net.state_dict()
    state.pop("score.bias")
    state["extra.weight"] = np.zeros(3)
    state["score.weight"] = np.zeros((2, 5, 1, 1))
    with pytest.raises(ValueError, match=r"missing entries \['score.bias'\].*unexpected entries \['extra.weight'\]"
                                         r".*score.weight: expected \(2, 4, 1, 1\), got \(2, 5, 1, 1\)"):
        net.load_state_dict(state)
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.npz"):
        nn.load_state_dict(tmp_path / "nothing.npz")


def test_training_steps_reduce_the_loss():
    msn.manual_seed(2)
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.normal(size=(4, 3, 4, 4)), np.ones((2, 2)))  # structure at the net's output resolution
    x = msn.tensor(blocks.astype(np.float32))
    target = (x.data[:, 0] > 0).astype(np.int64)  # a pixelwise task the net can learn
    net = TinyNet()
    opt = optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0], losses[::10]


@requires_torch
@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
                                         ("Adam", dict(lr=0.05)), ("Adam", dict(lr=0.05, weight_decay=0.1))])
def test_optimizers_match_torch(name, kwargs):
    rng = np.random.default_rng(3)
    w0, x = rng.normal(size=(3, 4)), rng.normal(size=(5, 3))
    w = nn.Parameter(w0.copy())
    tw = torch.tensor(w0.copy(), requires_grad=True)
    ours, theirs = getattr(optim, name)([w], **kwargs), getattr(torch.optim, name)([tw], **kwargs)
    for _ in range(5):
        ours.zero_grad()
        theirs.zero_grad()
        (F.tanh(msn.tensor(x) @ w) ** 2).sum().backward()
        (torch.tanh(torch.tensor(x) @ tw) ** 2).sum().backward()
        ours.step()
        theirs.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_optimizer_state_round_trip_resumes_exactly(tmp_path):
    def run(steps, opt_state=None, weights=None):
        w = nn.Parameter(np.ones((2, 2)) if weights is None else weights.copy())
        opt = optim.Adam([w], lr=0.1)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        for _ in range(steps):
            opt.zero_grad()
            ((w * w).sum() + w.sum()).backward()
            opt.step()
        return w, opt

    straight, _ = run(6)
    half, opt = run(3)
    nn.save_npz_atomic(tmp_path / "opt.npz", opt.state_dict())
    with np.load(tmp_path / "opt.npz") as saved:
        resumed, _ = run(3, dict(saved), half.data)
    np.testing.assert_allclose(resumed.data, straight.data, rtol=1e-12)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam: learning rate must be positive, got -1"):
        optim.Adam([nn.Parameter(np.ones(2))], lr=-1)


def test_load_state_dict_copies_so_training_never_changes_the_dict():
    state = TinyNet().state_dict()
    before = {k: v.copy() for k, v in state.items()}
    a, b = TinyNet().load_state_dict(state), TinyNet().load_state_dict(state)
    opt = optim.SGD(a.parameters(), lr=0.5)
    x = msn.tensor(np.random.default_rng(0).normal(size=(1, 3, 8, 8)), dtype=np.float32)
    a(x).sum().backward()
    opt.step()
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])  # the caller's dict is untouched
    assert not np.array_equal(a.state_dict()["score.weight"], b.state_dict()["score.weight"])  # no sharing


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p, lr=0.1)])
def test_optimizer_state_dicts_are_copies_both_ways(make):
    w = nn.Parameter(np.ones(3))
    opt = make([w])
    (w * w).sum().backward()
    opt.step()
    saved = opt.state_dict()
    snapshot = {k: np.array(v) for k, v in saved.items()}
    w.grad = None
    (w * w).sum().backward()
    opt.step()  # must not change the dict handed out before
    for k in saved:
        np.testing.assert_array_equal(saved[k], snapshot[k])
    other = make([nn.Parameter(np.ones(3))])
    other.load_state_dict(saved)
    other.params[0].grad = np.ones(3)
    other.step()  # must not change the dict it loaded
    for k in saved:
        np.testing.assert_array_equal(saved[k], snapshot[k])


def test_optimizer_state_from_another_model_or_optimizer_is_refused():
    big = [nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))]
    adam = optim.Adam(big, lr=0.1)
    for p in big:
        (p * p).sum().backward()
    adam.step()
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the state dict is for 2 parameters, this optimizer "
                                         r"has 1"):
        optim.Adam([nn.Parameter(np.ones(3))], lr=0.1).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the state dict is for 2 parameters, this optimizer "
                                         r"has 3"):
        optim.Adam(big + [nn.Parameter(np.ones(1))], lr=0.1).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: the state dict is Adam's, not SGD's"):
        optim.SGD(big, lr=0.1, momentum=0.9).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the state dict is SGD's, not Adam's"):
        optim.Adam(big, lr=0.1).load_state_dict(optim.SGD(big, lr=0.1).state_dict())
    old_format = {k: v for k, v in adam.state_dict().items() if k not in ("kind", "num_params")}
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: entry '0.m' holds 'm', which SGD does not keep"):
        optim.SGD(big, lr=0.1, momentum=0.9).load_state_dict(old_format)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: entry '1.m' is for parameter 1, but this optimizer "
                                         r"has 1 parameters"):
        optim.Adam([nn.Parameter(np.ones(3))], lr=0.1).load_state_dict(old_format)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state 0.m has shape \(3,\), parameter 0 has \(4,\)"):
        optim.Adam([nn.Parameter(np.ones(4)), nn.Parameter(np.ones(2))], lr=0.1).load_state_dict(adam.state_dict())
