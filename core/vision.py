"""The two torchvision building blocks the image tasks use, without importing torchvision.

``import torchvision`` pulls in ``torch._dynamo`` (the compiler's front end): ~190 MiB resident and 1-2 s on a CPU
host (bench/memory.py prints it), for two small classes. These are the same modules -- same submodule names,
shapes and forward -- so weights trained with torchvision's classes load strictly into these and give the same
outputs (tests/test_vision_blocks.py compares both).
"""

from __future__ import annotations

from torch import Tensor, nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (torchvision.models.resnet.conv3x3)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (torchvision.models.resnet.conv1x1)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """ResNet's basic block (torchvision.models.resnet.BasicBlock): conv3x3-BN-ReLU-conv3x3-BN, plus the input
    (through ``downsample`` where the shape changes), then ReLU."""

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, planes, H/stride, W/stride)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Conv2dNormActivation(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU, "same" padding (torchvision.ops.Conv2dNormActivation's defaults)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2,
                                   bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.out_channels = out_channels
