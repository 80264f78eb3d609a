"""Every op on a real GPU gives the CPU result (float32, relative error within 1e-5), and a
training step runs end to end on the device. Marked ``gpu``: skipped without CuPy and a GPU."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn, optim

pytestmark = pytest.mark.gpu

OPS = {
    "conv2d": (lambda x, w: F.conv2d(x, w, None, 2, 1, 2), [(2, 4, 11, 9), (6, 4, 3, 3)]),
    "conv2d_depthwise": (lambda x, w: F.conv2d(x, w, padding=1, groups=4), [(2, 4, 7, 8), (4, 1, 3, 3)]),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                         [(2, 4, 5, 6), (4, 3, 4, 4)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 3, 9, 8)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 3, 9, 8)]),
    "bilinear": (lambda x: F.interpolate_bilinear(x, size=(13, 7)), [(2, 3, 5, 4)]),
    "bilinear_corners": (lambda x: F.interpolate_bilinear(x, scale_factor=2.5, align_corners=True), [(2, 3, 5, 4)]),
    "elementwise": (lambda a, b: F.tanh(a * b - a / (b * b + 1)) + F.sigmoid(a).exp().log() ** 2.0,
                    [(3, 4), (1, 4)]),
    "reductions": (lambda a: F.max(a, axis=1) + F.mean(a, axis=1) + F.sum(a ** 2, axis=(0,), keepdims=True).mean(),
                   [(3, 5)]),
    "matmul_softmax": (lambda a, b: F.log_softmax(F.matmul(a, b), axis=-1) + F.softmax(a @ b, axis=0), [(3, 4), (4, 5)]),
    "shape": (lambda a: F.pad(F.concatenate([a, a[:, ::2]], axis=1).transpose(1, 0), ((1, 0), (0, 2)))[np.array([0, 2, 2])],
              [(3, 4)]),
}


@pytest.mark.parametrize("gpu_kernels", ["cuda-c", "numba"])
@pytest.mark.parametrize("name", list(OPS))
def test_op_on_gpu_matches_cpu(name, gpu_kernels, monkeypatch):
    """With either set of GPU kernels: the CUDA C ones launched through CuPy (the default) and the Numba
    CUDA twins (MINISEGNET_GPU_KERNELS=numba)."""
    from minisegnet import kernels
    if gpu_kernels == "numba":
        pytest.importorskip("numba.cuda", reason="the Numba twins need numba-cuda (the cuda-twins extra)")
    monkeypatch.setattr(kernels, "GPU_KERNELS", gpu_kernels)
    fn, shapes = OPS[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    cpu = [msn.tensor(a, requires_grad=True) for a in arrays]
    gpu = [msn.tensor(a, requires_grad=True, device="cuda") for a in arrays]
    out_cpu, out_gpu = fn(*cpu), fn(*gpu)
    assert out_gpu.device == "cuda"
    g = rng.standard_normal(out_cpu.shape).astype(np.float32)
    out_cpu.backward(g)
    out_gpu.backward(msn.tensor(g, device="cuda"))
    np.testing.assert_allclose(out_gpu.numpy(), out_cpu.numpy(), rtol=1e-5, atol=1e-5)
    for c, d in zip(cpu, gpu):
        assert d.grad is not None and type(d.grad).__module__.startswith("cupy")
        np.testing.assert_allclose(d.grad.get(), c.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cross_entropy_and_a_training_step_on_gpu(optimizer):
    """Three steps on the CPU and on the GPU from the same weights (Adam: the fused CUDA C update)."""
    msn.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, bilinear=True))
    state = net.state_dict()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    target = rng.integers(0, 4, size=(2, 8, 8))
    target[0, 0, :3] = 255
    losses = {}
    for device in ("cpu", "cuda"):
        net.load_state_dict(state)
        net.to(device)
        opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd" else \
            optim.Adam(net.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(net(msn.tensor(x, device=device)), target, weight=np.arange(1.0, 5.0))
            loss.backward()
            opt.step()
        losses[device] = (loss.item(), net.state_dict())
    np.testing.assert_allclose(losses["cuda"][0], losses["cpu"][0], rtol=1e-4)
    for name, value in losses["cpu"][1].items():
        np.testing.assert_allclose(losses["cuda"][1][name], value, rtol=1e-4, atol=1e-5)


def test_mixing_devices_names_both():
    a = msn.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"add: inputs are on different devices \(cpu and cuda\)"):
        a + a.to("cuda")


def test_gradcheck_runs_on_gpu_in_float64():
    x = msn.tensor(np.random.default_rng(2).standard_normal((1, 2, 5, 5)), requires_grad=True, device="cuda")
    w = msn.tensor(np.random.default_rng(3).standard_normal((3, 2, 3, 3)), requires_grad=True, device="cuda")
    assert msn.gradcheck(lambda a, b: F.max_pool2d(F.conv2d(a, b, padding=1, dilation=2), 2, 1), x, w, max_elements=40)


def test_dense_crf_on_gpu_matches_cpu():
    import cupy
    from minisegnet import crf
    from minisegnet.data import render_scene
    image, labels = render_scene(np.random.default_rng(0), size=64)
    probabilities = crf.blocky_prediction(labels, 9, factor=16)
    on_cpu = crf.dense_crf(probabilities, image)
    on_gpu = crf.dense_crf(cupy.asarray(probabilities), cupy.asarray(image))
    assert isinstance(on_gpu, cupy.ndarray)
    np.testing.assert_allclose(on_gpu.get(), on_cpu, atol=1e-6)
