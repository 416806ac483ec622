"""gradflow.utils: summary (parameter and FLOP counts by hand), draw_graph (the DOT text's
nodes, edges and labels) and EarlyStopping (patience, min_delta, mode, restoring)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import gradflow
from gradflow import nn
from gradflow.utils import EarlyStopping, draw_graph, graph, summary


# ---------------------------------------------------------------- summary
def lenet5() -> nn.Sequential:
    """The classic LeNet-5 on 1×32×32: tanh and average pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, 10),
    )


def vgg16() -> nn.Sequential:
    """torchvision's VGG-16 layout: 13 3×3 convs in 5 blocks, AdaptiveAvgPool2d(7), 3 FCs."""
    layers, channels = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000),
    )
    return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                         classifier)


def test_lenet5_rows_by_hand():
    s = summary(lenet5(), (1, 32, 32))
    assert s.total_params == s.trainable_params == 61_706
    assert [r.name for r in s.rows] == [str(i) for i in range(12)]
    assert [r.type for r in s.rows][:3] == ["Conv2d", "Tanh", "AvgPool2d"]
    assert [r.output_shape for r in s.rows] == [
        (1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14), (1, 16, 10, 10), (1, 16, 10, 10),
        (1, 16, 5, 5), (1, 400), (1, 120), (1, 120), (1, 84), (1, 84), (1, 10)]
    assert [r.params for r in s.rows] == [156, 0, 0, 2416, 0, 0, 0, 48_120, 0, 10_164, 0, 850]
    flops = [
        2 * 6 * 28 * 28 * 1 * 25,  # conv1: 2 x outputs x in_channels x 5 x 5
        6 * 28 * 28,  # tanh: one per element
        6 * 14 * 14 * 4,  # avg pool: one per tap
        2 * 16 * 10 * 10 * 6 * 25,
        16 * 10 * 10,
        16 * 5 * 5 * 4,
        0,  # flatten
        2 * 120 * 400,  # linear: 2 x outputs x in_features
        120,
        2 * 84 * 120,
        84,
        2 * 10 * 84,
    ]
    assert [r.flops for r in s.rows] == flops
    assert s.total_flops == sum(flops) == 845_852
    assert s.rows[0].output_bytes == 6 * 28 * 28 * 4
    assert s.activation_bytes == sum(r.output_bytes for r in s.rows)
    assert s.param_bytes == 61_706 * 4


def test_batch_size_scales_shapes_and_flops_not_params():
    one, four = summary(lenet5(), (1, 32, 32)), summary(lenet5(), (1, 32, 32), batch_size=4)
    assert four.rows[0].output_shape == (4, 6, 28, 28)
    assert four.total_flops == 4 * one.total_flops
    assert four.total_params == one.total_params
    assert four.input_bytes == 4 * 32 * 32 * 4


def test_vgg16_parameter_count():
    # 224×224 input costs ~31 GFLOPs; at 32×32 the adaptive pool still hands the classifier
    # 512×7×7 features, so every layer and parameter count is the same as at 224.
    s = summary(vgg16(), (3, 32, 32))
    assert s.total_params == 138_357_544
    assert s.rows[0].flops == 2 * 64 * 32 * 32 * 3 * 9
    assert s.rows[-1].output_shape == (1, 1000)
    assert sum(r.type == "Conv2d" for r in s.rows) == 13
    assert sum(r.type == "Linear" for r in s.rows) == 3


def test_table_text():
    text = str(summary(lenet5(), (1, 32, 32)))
    assert re.search(r"^Layer \(type\)\s+Output shape\s+Params\s+FLOPs\s+Output memory$", text,
                     re.M)
    assert re.search(r"^0 \(Conv2d\)\s+\[1, 6, 28, 28\]\s+156\s+235\.20 k\s+18\.38 KiB$", text,
                     re.M)
    assert "Total params: 61,706" in text
    assert "Trainable params: 61,706" in text
    assert "Total FLOPs: 845.85 kFLOPs (a multiply-add counts as 2)" in text


def test_conv_transpose_flops_and_frozen_params():
    model = nn.Sequential(nn.ConvTranspose2d(4, 2, 3, stride=2), nn.BatchNorm2d(2))
    model[0].weight.requires_grad_(False)
    s = summary(model, (4, 5, 5))
    assert s.rows[0].output_shape == (1, 2, 11, 11)
    assert s.rows[0].flops == 2 * (4 * 5 * 5) * 2 * 9  # 2 x inputs x out_channels x kh x kw
    assert s.rows[1].flops == 2 * 2 * 11 * 11
    assert s.total_params == 4 * 2 * 9 + 2 + 4
    assert s.trainable_params == 2 + 4


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(5, 4)

    def forward(self, x, y):
        return self.a(x) + self.b(y)


def test_several_inputs_shared_modules_and_tuple_outputs():
    s = summary(TwoInputs(), [(3,), (5,)], batch_size=2)
    assert [(r.name, r.output_shape) for r in s.rows] == [("a", (2, 4)), ("b", (2, 4))]
    assert s.input_bytes == (2 * 3 + 2 * 5) * 4

    shared = nn.Linear(4, 4)
    s = summary(nn.Sequential(shared, nn.ReLU(), shared), (4,))
    assert [r.params for r in s.rows] == [20, 0, 0]  # counted at the first call only
    assert s.rows[2].flops == 2 * 4 * 4

    s = summary(nn.MaxPool2d(2, return_indices=True), (1, 4, 4))
    assert s.rows[0].output_shape == [(1, 1, 2, 2), (1, 1, 2, 2)]
    assert s.rows[0].name == "" and "MaxPool2d (MaxPool2d)" in str(s)


def test_summary_leaves_modes_running_stats_and_rng_alone():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout())
    model[2].eval()
    gradflow.manual_seed(0)
    expected = gradflow.rand(3).numpy()
    gradflow.manual_seed(0)
    summary(model, (3,), batch_size=1)
    assert np.array_equal(gradflow.rand(3).numpy(), expected)
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert np.array_equal(model[1].running_mean.numpy(), np.zeros(3, np.float32))


def test_summary_dtype_and_bad_input_size():
    s = summary(nn.Linear(2, 3), (2,), dtype=gradflow.float64)
    assert s.rows[0].output_bytes == 3 * 8
    with pytest.raises(TypeError, match="input_size should be a shape"):
        summary(nn.Linear(2, 3), [(2,), 3])


# ---------------------------------------------------------------- draw_graph
NODE = re.compile(r'^\s+(n\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.M)
EDGE = re.compile(r"^\s+(n\d+) -> (n\d+);$", re.M)


def parse(dot: str):
    """({node id: (label lines, attributes)}, [(from label, to label)])."""
    nodes = {m[1]: (m[2].split("\\n"), m[3]) for m in NODE.finditer(dot)}
    edges = [(nodes[a][0][0], nodes[b][0][0]) for a, b in EDGE.findall(dot)]
    return nodes, edges


def test_graph_of_a_small_expression():
    x = gradflow.randn(2, 3)
    w = gradflow.randn(3, 4, requires_grad=True)
    b = gradflow.randn(4, requires_grad=True)
    dot = draw_graph((x @ w + b).relu().sum(), params={"w": w, "b": b})
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    nodes, edges = parse(dot)
    labels = sorted(lines[0] for lines, _ in nodes.values())
    assert labels == ["Add", "MatMul", "Relu", "Sum", "b", "w"]  # x needs no grad: not drawn
    assert sorted(edges) == sorted([("w", "MatMul"), ("MatMul", "Add"), ("b", "Add"),
                                    ("Add", "Relu"), ("Relu", "Sum")])
    by_name = {lines[0]: (lines[1], attrs) for lines, attrs in nodes.values()}
    assert by_name["MatMul"][0] == "(2, 4)"
    assert by_name["Sum"] == ("()", ", fillcolor=palegreen")
    assert by_name["w"][0] == "(3, 4)" and "shape=ellipse" in by_name["w"][1]
    assert by_name["b"][0] == "(4,)"


def test_graph_shares_nodes_and_draws_every_use():
    x = gradflow.randn(3, requires_grad=True)
    nodes, edges = parse(draw_graph(x * x))
    assert len(nodes) == 2
    assert edges == [("(3,)", "Mul"), ("(3,)", "Mul")]  # unnamed leaf: labelled by its shape


def test_graph_of_a_leaf_and_of_a_model():
    nodes, edges = parse(draw_graph(gradflow.ones(2, 2, requires_grad=True)))
    assert list(nodes.values()) == [(["(2, 2)"], ", shape=ellipse, style=filled, "
                                     "fillcolor=lightblue")]
    assert edges == []

    model = lenet5()
    loss = model(gradflow.randn(2, 1, 32, 32)).sum()
    nodes, edges = parse(draw_graph(loss, params=dict(model.named_parameters())))
    leaves = {lines[0] for lines, attrs in nodes.values() if "ellipse" in attrs}
    assert leaves == {name for name, _ in model.named_parameters()}
    assert len(edges) >= len(nodes) - 1  # connected: every node but the root feeds another


def test_graph_quotes_labels():
    w = gradflow.randn(2, requires_grad=True)
    dot = draw_graph(w.exp(), params={'we"ird\\name': w})
    assert 'label="we\\"ird\\\\name\\n(2,)"' in dot


def test_graph_files(tmp_path, monkeypatch):
    y = (gradflow.randn(3, requires_grad=True) * 2).sum()
    text = draw_graph(y, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == text == draw_graph(y)
    draw_graph(y, tmp_path / "g.txt", format="gv")
    assert (tmp_path / "g.txt").read_text() == text

    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs Graphviz's 'dot' program"):
        draw_graph(y, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_graph_renders_through_dot(tmp_path, monkeypatch):
    """draw_graph pipes the DOT text to `dot -T<format> -o <path>`: Graphviz's own dot when it
    is installed, else a stand-in that records how it was called (the call is gradflow's)."""
    y = (gradflow.randn(3, requires_grad=True) * 2).sum()
    stand_in = shutil.which("dot") is None
    if stand_in:
        fake = tmp_path / "dot"
        fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\ncat > "$0.stdin"\n'
                        'echo "<svg/>" > "$3"\n')
        fake.chmod(0o755)
        monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake))
    draw_graph(y, tmp_path / "g.svg")
    assert "<svg" in (tmp_path / "g.svg").read_text()
    if stand_in:
        assert (tmp_path / "dot.args").read_text().split() == ["-Tsvg", "-o",
                                                               str(tmp_path / "g.svg")]
        assert (tmp_path / "dot.stdin").read_text() == draw_graph(y)


# ---------------------------------------------------------------- EarlyStopping
def test_patience_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=3)
    decisions = [stopper.step(m) for m in [1.0, 0.9, 0.95, 0.95, 0.95, 0.5]]
    assert decisions == [False, False, False, False, True, True]
    assert (stopper.best, stopper.best_epoch) == (0.9, 1)
    assert stopper.should_stop


def test_min_delta_and_nan():
    stopper = EarlyStopping(patience=5, min_delta=0.1)
    for m in [1.0, 0.95, float("nan"), 0.85]:
        stopper.step(m)
    assert (stopper.best, stopper.best_epoch, stopper.counter) == (0.85, 3, 0)
    stopper.step(0.80)  # better, but by less than min_delta
    assert (stopper.best, stopper.counter) == (0.85, 1)


def test_mode_max_and_tensor_metrics():
    stopper = EarlyStopping(patience=2, mode="max")
    decisions = [stopper.step(gradflow.tensor(m)) for m in [0.5, 0.6, 0.55, 0.6]]
    assert decisions == [False, False, False, True]
    assert stopper.best == pytest.approx(0.6) and stopper.best_epoch == 1


def test_restores_best_weights_on_stop():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(patience=1)
    with gradflow.no_grad():
        model.weight.fill_(1.0)
    assert not stopper.step(0.5, model)
    with gradflow.no_grad():
        model.weight.fill_(7.0)  # in place: the saved copy must not follow
    assert stopper.step(0.6, model)
    assert np.array_equal(model.weight.detach().numpy(), np.ones((1, 2), np.float32))


def test_restore_by_hand_when_restore_best_is_off():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(patience=0, restore_best=False)
    with pytest.raises(RuntimeError, match="no best state"):
        stopper.restore(model)
    best = model.weight.detach().numpy().copy()
    stopper.step(1.0, model)
    with gradflow.no_grad():
        model.weight.fill_(3.0)
    assert stopper.step(2.0, model)
    assert np.all(model.weight.detach().numpy() == 3.0)
    stopper.restore(model)
    assert np.array_equal(model.weight.detach().numpy(), best)


@pytest.mark.parametrize("kwargs, message", [
    ({"patience": -1}, "patience"), ({"min_delta": -0.1}, "min_delta"),
    ({"mode": "maximum"}, "mode should be 'min' or 'max'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)


def test_nan_never_becomes_best():
    stopper = EarlyStopping(patience=1)
    assert stopper.step(float("nan")) is True
    assert stopper.best is None and stopper.best_epoch is None
