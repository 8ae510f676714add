"""Regenerate the model-zoo goldens: classic ImageNet CNNs (and one small recurrent model) written
from their papers in plain torch.nn, exported to ONNX without weights, with their MACs counted
independently in PyTorch.

    .venv/bin/python tests/data/zoo/make_zoo.py

Each model is exported with torch's TorchScript exporter (`dynamo=False`) and
`export_params=False`, which turns weights into shaped graph inputs: the files stay a few KB
and the frontend still sees every shape. The models are exported at a spread of opsets (7-21)
so that old-opset paths (Dropout with a mask output, MaxPool without ceil_mode, Softmax's 2-D
coercion, attribute operands) are exercised as model-zoo files exercise them. Below opset 12
Dropout modules are left in training mode so that the exporter keeps the Dropout nodes (there
an ONNX Dropout is an inference identity with an optional mask output); from opset 12 ONNX
Dropout has a training mode of its own, so the whole model is exported in inference mode. The graph inputs that hold weights are
listed in the model metadata `parameter_inputs`, so the compiler gives them the role parameter.

MACs are counted at export time by forward hooks: Conv2d out.numel()·(c_in/groups)·kh·kw,
Linear out.numel()·in_features, LSTM/GRU per layer directions·seq·batch·gates·hidden·(input +
hidden). Nothing else counts as a MAC (pooling, normalization, activations are flops).

golden.csv: model, file, opset, input shape, the published MAC count with its source (empty
when the paper gives none), the count of the hooks, and a note on any difference.
"""

from __future__ import annotations

import csv
import io
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------ building blocks
class _LRN(torch.autograd.Function):
    """Local response normalization exported as the ONNX LRN op (torch's own export decomposes it
    into padding, pooling and, from opset 11, an If node)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.Module):
    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.args = (size, alpha, beta, k)

    def forward(self, x):
        return _LRN.apply(x, *self.args)


def conv(c_in, c_out, k, stride=1, pad=0, groups=1, relu=True, bn=False):
    layers = [nn.Conv2d(c_in, c_out, k, stride, pad, groups=groups, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------ AlexNet
class AlexNet(nn.Module):
    """Krizhevsky, Sutskever, Hinton, NIPS 2012, Fig. 2 — the two-GPU network as one, its
    cross-GPU split kept as group=2 in conv2, conv4, conv5 (the BVLC Caffe reference), LRN
    after conv1 and conv2 (size 5, α 1e-4, β 0.75), 227x227 input."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv(3, 96, 11, 4), LRN(), nn.MaxPool2d(3, 2),
            conv(96, 256, 5, 1, 2, groups=2), LRN(), nn.MaxPool2d(3, 2),
            conv(256, 384, 3, 1, 1), conv(384, 384, 3, 1, 1, groups=2), conv(384, 256, 3, 1, 1, groups=2),
            nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------------------------------------ ZFNet-512
class ZFNet512(nn.Module):
    """Zeiler & Fergus, ECCV 2014, Fig. 3 with layers 3, 4, 5 widened to 512, 1024, 512 maps
    (Table 2, the variant the ONNX model zoo calls ZFNet-512): conv1 7x7/2 (224 -> 110), 3x3/2
    pools (padded to reach the figure's 55 and 13), contrast normalization (LRN) after the
    first two pools, 224x224 input."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv(3, 96, 7, 2, 1), nn.MaxPool2d(3, 2, 1), LRN(),
            conv(96, 256, 5, 2), nn.MaxPool2d(3, 2, 1), LRN(),
            conv(256, 512, 3, 1, 1), conv(512, 1024, 3, 1, 1), conv(1024, 512, 3, 1, 1),
            nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(512 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------------------------------------ VGG-19
class VGG19(nn.Module):
    """Simonyan & Zisserman, ICLR 2015, Table 1 configuration E: 16 3x3 convolutions in five
    stages of 64, 128, 256, 512, 512 channels, each stage closed by a 2x2/2 max pool, then
    FC-4096, FC-4096, FC-1000; 224x224 input."""

    STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for width, n in self.STAGES:
            for _ in range(n):
                layers.append(conv(c, width, 3, 1, 1))
                c = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4096, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------------------------------------ ResNet-50
class Bottleneck(nn.Module):
    """He et al., CVPR 2016, Fig. 5 right: 1x1, 3x3, 1x1 with the stride on the first 1x1 (the
    original Caffe model), projection shortcut (option B) when the shape changes."""

    def __init__(self, c_in, width, stride):
        super().__init__()
        c_out = 4 * width
        self.body = nn.Sequential(conv(c_in, width, 1, stride, bn=True), conv(width, width, 3, 1, 1, bn=True),
                                  conv(width, c_out, 1, bn=True, relu=False))
        self.shortcut = (conv(c_in, c_out, 1, stride, bn=True, relu=False)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """He et al., CVPR 2016, Table 1, 50-layer column: conv1 7x7/2 64, 3x3/2 max pool, stages of
    3, 4, 6, 3 bottlenecks of width 64, 128, 256, 512, global average pool, FC-1000."""

    def __init__(self):
        super().__init__()
        layers, c = [conv(3, 64, 7, 2, 3, bn=True), nn.MaxPool2d(3, 2, 1)], 64
        for i, (width, n) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
            for j in range(n):
                layers.append(Bottleneck(c, width, 2 if j == 0 and i > 0 else 1))
                c = 4 * width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ------------------------------------------------------------------------------------ GoogLeNet
class Inception(nn.Module):
    """GoogLeNet's inception module (Szegedy et al., CVPR 2015, Fig. 2b): 1x1; 1x1 -> 3x3;
    1x1 -> 5x5; 3x3 max pool -> 1x1 projection; concatenated."""

    def __init__(self, c_in, n1, r3, n3, r5, n5, proj):
        super().__init__()
        self.b1 = conv(c_in, n1, 1)
        self.b3 = nn.Sequential(conv(c_in, r3, 1), conv(r3, n3, 3, 1, 1))
        self.b5 = nn.Sequential(conv(c_in, r5, 1), conv(r5, n5, 5, 1, 2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(c_in, proj, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class GoogLeNet(nn.Module):
    """Szegedy et al., CVPR 2015, Table 1 (inference: no auxiliary classifiers); max pools
    3x3/2 rounding up as in the Caffe model; LRN after the first pool and after conv2."""

    TABLE = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
             "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
             "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
             "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
             "5b": (832, 384, 192, 384, 48, 128, 128)}

    def __init__(self):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        t = self.TABLE
        self.features = nn.Sequential(
            conv(3, 64, 7, 2, 3), pool(), LRN(), conv(64, 64, 1), conv(64, 192, 3, 1, 1), LRN(), pool(),
            Inception(*t["3a"]), Inception(*t["3b"]), pool(),
            *(Inception(*t[k]) for k in ("4a", "4b", "4c", "4d", "4e")), pool(),
            Inception(*t["5a"]), Inception(*t["5b"]), nn.AvgPool2d(7, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.4), nn.Linear(1024, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------------------------------------ Inception v3
def bn_conv(c_in, c_out, k, stride=1, pad=0):
    return conv(c_in, c_out, k, stride, pad, bn=True)


class InceptionA(nn.Module):   # Fig. 5: 5x5 factorised as two 3x3 (35x35 grid)
    def __init__(self, c_in, pool):
        super().__init__()
        self.b1 = bn_conv(c_in, 64, 1)
        self.b5 = nn.Sequential(bn_conv(c_in, 48, 1), bn_conv(48, 64, 5, 1, 2))
        self.b3 = nn.Sequential(bn_conv(c_in, 64, 1), bn_conv(64, 96, 3, 1, 1), bn_conv(96, 96, 3, 1, 1))
        self.bp = nn.Sequential(nn.AvgPool2d(3, 1, 1), bn_conv(c_in, pool, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), self.bp(x)], 1)


class ReductionA(nn.Module):   # Fig. 10: grid 35 -> 17
    def __init__(self, c_in):
        super().__init__()
        self.b3 = bn_conv(c_in, 384, 3, 2)
        self.b33 = nn.Sequential(bn_conv(c_in, 64, 1), bn_conv(64, 96, 3, 1, 1), bn_conv(96, 96, 3, 2))
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x):
        return torch.cat([self.b3(x), self.b33(x), self.pool(x)], 1)


class InceptionC(nn.Module):   # Fig. 6: n x n factorised into 1 x 7 and 7 x 1 (17x17 grid)
    def __init__(self, c_in, c7):
        super().__init__()
        self.b1 = bn_conv(c_in, 192, 1)
        self.b7 = nn.Sequential(bn_conv(c_in, c7, 1), bn_conv(c7, c7, (1, 7), 1, (0, 3)),
                                bn_conv(c7, 192, (7, 1), 1, (3, 0)))
        self.b77 = nn.Sequential(bn_conv(c_in, c7, 1), bn_conv(c7, c7, (7, 1), 1, (3, 0)),
                                 bn_conv(c7, c7, (1, 7), 1, (0, 3)), bn_conv(c7, c7, (7, 1), 1, (3, 0)),
                                 bn_conv(c7, 192, (1, 7), 1, (0, 3)))
        self.bp = nn.Sequential(nn.AvgPool2d(3, 1, 1), bn_conv(c_in, 192, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b7(x), self.b77(x), self.bp(x)], 1)


class ReductionB(nn.Module):   # grid 17 -> 8
    def __init__(self, c_in):
        super().__init__()
        self.b3 = nn.Sequential(bn_conv(c_in, 192, 1), bn_conv(192, 320, 3, 2))
        self.b7 = nn.Sequential(bn_conv(c_in, 192, 1), bn_conv(192, 192, (1, 7), 1, (0, 3)),
                                bn_conv(192, 192, (7, 1), 1, (3, 0)), bn_conv(192, 192, 3, 2))
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x):
        return torch.cat([self.b3(x), self.b7(x), self.pool(x)], 1)


class InceptionE(nn.Module):   # Fig. 7: expanded filter banks (8x8 grid)
    def __init__(self, c_in):
        super().__init__()
        self.b1 = bn_conv(c_in, 320, 1)
        self.b3 = bn_conv(c_in, 384, 1)
        self.b3a, self.b3b = bn_conv(384, 384, (1, 3), 1, (0, 1)), bn_conv(384, 384, (3, 1), 1, (1, 0))
        self.b33 = nn.Sequential(bn_conv(c_in, 448, 1), bn_conv(448, 384, 3, 1, 1))
        self.b33a, self.b33b = bn_conv(384, 384, (1, 3), 1, (0, 1)), bn_conv(384, 384, (3, 1), 1, (1, 0))
        self.bp = nn.Sequential(nn.AvgPool2d(3, 1, 1), bn_conv(c_in, 192, 1))

    def forward(self, x):
        b3, b33 = self.b3(x), self.b33(x)
        return torch.cat([self.b1(x), self.b3a(b3), self.b3b(b3), self.b33a(b33), self.b33b(b33),
                          self.bp(x)], 1)


class InceptionV3(nn.Module):
    """Szegedy et al., CVPR 2016 ("Rethinking the Inception Architecture"), Table 1 and Figs.
    5, 6, 7, 10: the 299x299 network without its auxiliary classifier (inference)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            bn_conv(3, 32, 3, 2), bn_conv(32, 32, 3), bn_conv(32, 64, 3, 1, 1), nn.MaxPool2d(3, 2),
            bn_conv(64, 80, 1), bn_conv(80, 192, 3), nn.MaxPool2d(3, 2),
            InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64), ReductionA(288),
            InceptionC(768, 128), InceptionC(768, 160), InceptionC(768, 160), InceptionC(768, 192),
            ReductionB(768), InceptionE(1280), InceptionE(2048))
        self.fc = nn.Linear(2048, 1000)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(self.drop(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)))


# ------------------------------------------------------------------------------------ SqueezeNet
class Fire(nn.Module):
    """Iandola et al., 2016, Fig. 1: squeeze 1x1, then expand 1x1 and 3x3, concatenated."""

    def __init__(self, c_in, s1, e1, e3):
        super().__init__()
        self.squeeze = conv(c_in, s1, 1)
        self.e1, self.e3 = conv(s1, e1, 1), conv(s1, e3, 3, 1, 1)

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet v1.0, Iandola et al., 2016, Table 1: conv1 96 7x7/2 (227 -> 111), fire2-9,
    max pools after conv1, fire4 and fire8, conv10 1x1 to 1000 classes, global average pool."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv(3, 96, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
            nn.MaxPool2d(3, 2, ceil_mode=True), Fire(512, 64, 256, 256), nn.Dropout(0.5), conv(512, 1000, 1))

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)


# ------------------------------------------------------------------------------------ DenseNet-121
class DenseLayer(nn.Module):
    """Huang et al., CVPR 2017, DenseNet-B: BN-ReLU-Conv(1x1, 4k)-BN-ReLU-Conv(3x3, k)."""

    def __init__(self, c_in, growth):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.Conv2d(c_in, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True),
                                  nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class DenseNet121(nn.Module):
    """Huang et al., CVPR 2017, Table 1, DenseNet-121 (k = 32): blocks of 6, 12, 24, 16 layers,
    transitions BN-ReLU-Conv 1x1 halving the channels (θ = 0.5) and 2x2 average pooling."""

    def __init__(self, growth=32):
        super().__init__()
        layers, c = [conv(3, 64, 7, 2, 3, bn=True), nn.MaxPool2d(3, 2, 1)], 64
        for i, n in enumerate((6, 12, 24, 16)):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if i < 3:
                layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ------------------------------------------------------------------------------------ ShuffleNet
def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """Zhang et al., CVPR 2018, Fig. 2 (b) and (c): 1x1 group conv, channel shuffle, 3x3
    depthwise conv, 1x1 group conv; added to the input, or concatenated with its 3x3/2 average
    pool when the unit downsamples. Bottleneck width = a quarter of the output channels."""

    def __init__(self, c_in, c_out, groups, stride, first_group=True):
        super().__init__()
        self.stride, self.groups = stride, groups
        branch = c_out - c_in if stride == 2 else c_out
        mid = c_out // 4
        self.g1 = groups if first_group else 1
        self.reduce = conv(c_in, mid, 1, groups=self.g1, bn=True)
        self.depthwise = conv(mid, mid, 3, stride, 1, groups=mid, bn=True, relu=False)
        self.expand = conv(mid, branch, 1, groups=groups, bn=True, relu=False)

    def forward(self, x):
        y = self.reduce(x)
        if self.g1 > 1:
            y = channel_shuffle(y, self.g1)
        y = self.expand(self.depthwise(y))
        if self.stride == 2:
            return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))
        return F.relu(x + y)


class ShuffleNet(nn.Module):
    """ShuffleNet 1x, g = 3, Zhang et al., CVPR 2018, Table 1: conv1 24 3x3/2, 3x3/2 max pool,
    stages of 4, 8, 4 units with 240, 480, 960 output channels (the first pointwise layer of
    stage 2 is not grouped: its input has only 24 channels), global pool, FC-1000."""

    def __init__(self, groups=3):
        super().__init__()
        layers, c = [conv(3, 24, 3, 2, 1, bn=True), nn.MaxPool2d(3, 2, 1)], 24
        for stage, (c_out, n) in enumerate(((240, 4), (480, 8), (960, 4))):
            for i in range(n):
                layers.append(ShuffleUnit(c, c_out, groups, 2 if i == 0 else 1,
                                          first_group=not (stage == 0 and i == 0)))
                c = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(960, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ------------------------------------------------------------------------------------ recurrent
class RecurrentTagger(nn.Module):
    """Not from a paper: a small sequence tagger that puts the ONNX LSTM (bidirectional, two
    layers) and GRU ops of torch's exporter through the frontend. 20 steps, batch 4."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 64, num_layers=2, bidirectional=True)
        self.gru = nn.GRU(128, 48)
        self.out = nn.Linear(48, 10)

    def forward(self, x):
        y, _ = self.lstm(x)
        y, _ = self.gru(y)
        return self.out(y)


# ------------------------------------------------------------------------------------ the zoo
@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    opset: int
    published_macs: int | None
    published_source: str
    note: str


ZOO = [
    Entry("alexnet", AlexNet, (1, 3, 227, 227), 7, 724_000_000,
          "Sze et al., Efficient Processing of Deep Neural Networks, Proc. IEEE 2017: AlexNet 724M MACs",
          "conv 665.8 M + FC 58.6 M; the survey rounds to 1 M (+0.06 %)"),
    Entry("zfnet512", ZFNet512, (1, 3, 224, 224), 8, None, "",
          "the paper gives no operation count"),
    Entry("vgg19", VGG19, (1, 3, 224, 224), 9, 19_600_000_000,
          "He et al., Deep Residual Learning, CVPR 2016, Sec. 3.3: VGG-19 19.6 billion FLOPs (multiply-adds)",
          "the paper gives one decimal (19.63 G counted, +0.2 %)"),
    Entry("squeezenet1_0", SqueezeNet, (1, 3, 227, 227), 10, None, "",
          "the paper gives parameters and model size, no operation count"),
    Entry("googlenet", GoogLeNet, (1, 3, 224, 224), 11, 1_500_000_000,
          "Szegedy et al., Going Deeper with Convolutions, CVPR 2015, Sec. 1: a budget of 1.5 billion multiply-adds",
          "the paper states its budget (1.5 G, one decimal); the Table 1 network with its 5x5 branches "
          "counts 1.58 G (+5.5 %)"),
    Entry("resnet50", ResNet50, (1, 3, 224, 224), 13, 3_800_000_000,
          "He et al., Deep Residual Learning, CVPR 2016, Table 1: 3.8x10^9 FLOPs (multiply-adds)",
          "stride on the first 1x1 of a bottleneck as in the original model; the paper gives one decimal "
          "(3.86 G counted, +1.5 %)"),
    Entry("densenet121", DenseNet121, (1, 3, 224, 224), 15, None, "",
          "the paper plots FLOPs (Fig. 3) but lists none"),
    Entry("inception_v3", InceptionV3, (1, 3, 299, 299), 20, 5_000_000_000,
          "Szegedy et al., Rethinking the Inception Architecture, CVPR 2016, abstract: 5 billion multiply-adds",
          "the abstract's figure is rounded to 1 G; the Table 1 network counts 5.71 G (+14 %)"),
    Entry("shufflenet_g3", ShuffleNet, (1, 3, 224, 224), 21, 137_000_000,
          "Zhang et al., ShuffleNet, CVPR 2018, Table 1 (1x, g = 3): 137 MFLOPs (multiply-adds); recalled, verify",
          "MFLOPs in the paper are multiply-adds (137.46 M counted, +0.3 %)"),
    Entry("recurrent_tagger", RecurrentTagger, (20, 4, 32), 14, None, "",
          "synthetic: checks the LSTM/GRU rules against PyTorch's own layer sizes"),
]


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs of one forward pass by forward hooks (see the module docstring)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)):
            gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[type(module)]
            seq, batch = inputs[0].shape[:2]
            dirs = 2 if module.bidirectional else 1
            for layer in range(module.num_layers):
                width = module.input_size if layer == 0 else dirs * module.hidden_size
                total += dirs * seq * batch * gates * module.hidden_size * (width + module.hidden_size)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, nn.LSTM, nn.GRU, nn.RNN))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def export(entry: Entry, model: nn.Module, x: torch.Tensor) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f, dynamo=False, export_params=False, opset_version=entry.opset,
                          input_names=["input"], output_names=["output"],
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    proto = onnx.load_from_string(f.getvalue())
    weights = [i.name for i in proto.graph.input if i.name != "input"]
    onnx.helper.set_model_props(proto, {"parameter_inputs": ",".join(weights), "source": entry.name})
    proto.doc_string = f"{entry.name}: written from its paper in tests/data/zoo/make_zoo.py; weights are graph inputs"
    return proto.SerializeToString()


def main() -> int:
    torch.manual_seed(0)
    rows = []
    for entry in ZOO:
        model = entry.build().eval()
        for m in model.modules():   # keep Dropout nodes in the graph (see the module docstring)
            if isinstance(m, nn.Dropout) and entry.opset < 12:
                m.train()
        x = torch.zeros(entry.input_shape)
        macs = count_macs(model, x)
        data = export(entry, model, x)
        path = HERE / f"{entry.name}.onnx"
        path.write_bytes(data)
        rows.append({"model": entry.name, "file": path.name, "opset": entry.opset,
                     "input": "x".join(map(str, entry.input_shape)),
                     "published_macs": entry.published_macs or "", "published_source": entry.published_source,
                     "counted_macs": macs, "note": entry.note})
        print(f"{entry.name:18s} opset {entry.opset:2d}  {macs:>15,d} MACs  {len(data):>8,d} bytes")
    with open(HERE / "golden.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
