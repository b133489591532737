"""ResNet-18/34/50 (He et al. 2016) with the CIFAR stem and the projection head of docs/math.md section 6.

CIFAR stem: a 3x3 convolution with stride 1 and no max-pool (the authors' setting for 32x32 images); the
ImageNet stem (7x7 stride 2 and max-pool) is available with ``cifar_stem=False``. Projection head: features ->
``hidden`` (BatchNorm, ReLU) -> ``projection`` (2048 -> 512 -> 128 for ResNet-50, as the authors). ``width``
scales every stage (64 is the standard width; a narrow width is what a CPU can train).
"""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import check_int
from .custom import projection_head

__all__ = ["ResNetEncoder"]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inp: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(inp, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(out)) + self.shortcut(x)).relu()


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(inp, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y)).relu()
        return (self.bn3(self.conv3(y)) + self.shortcut(x)).relu()


def _shortcut(inp: int, out: int, stride: int) -> nn.Module:
    if stride == 1 and inp == out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))


DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3))}


class ResNetEncoder(nn.Module):
    """h = global-average-pooled ResNet features; z = head(h). ``forward`` accepts ``[N, C, H, W]`` or views
    ``[N, V, C, H, W]`` (returns ``[N, V, projection]``)."""

    def __init__(
        self,
        depth: int = 18,
        width: int = 64,
        in_channels: int = 3,
        hidden: int = 512,
        projection: int = 128,
        cifar_stem: bool = True,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth!r}")
        for name, value in dict(width=width, in_channels=in_channels, hidden=hidden, projection=projection).items():
            check_int(name, value, 1)
        kwargs = dict(depth=depth, width=width, in_channels=in_channels, hidden=hidden, projection=projection)
        self.spec = {"name": "resnet", "kwargs": {**kwargs, "cifar_stem": cifar_stem}}
        block, layers = DEPTHS[depth]
        if cifar_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        stages, inp = [], width
        for i, count in enumerate(layers):
            planes = width * 2**i
            blocks = []
            for j in range(count):
                blocks.append(block(inp, planes, 2 if (j == 0 and i > 0) else 1))
                inp = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = inp
        self.head = projection_head(inp, hidden, projection)

    def features(self, x: Tensor) -> Tensor:
        lead = x.shape[:-3]
        h = self.stages(self.stem(x.reshape(-1, *x.shape[-3:])))
        return h.mean(dim=(2, 3)).reshape(*lead, -1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)
        return self.head(h.reshape(-1, h.shape[-1])).reshape(*h.shape[:-1], -1)
