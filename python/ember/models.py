"""Small reference models: an MLP, a LeNet-style CNN for 1-channel images of any size, and
CIFAR-style ResNets (ResNet-8/14/20...) for 32x32 3-channel images."""
from . import nn
from .nn import functional as F


class MLP(nn.Sequential):
    """Flatten, then Linear+ReLU per hidden width, then Linear to num_classes."""

    def __init__(self, in_features=64, hidden=(128, 64), num_classes=10):
        layers = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class LeNet(nn.Sequential):
    """conv 1->32 3x3 pad 1, ReLU, maxpool 2, conv 32->64 3x3 pad 1, ReLU, maxpool 2, flatten,
    Linear -> 128, ReLU, Linear -> num_classes. The first Linear's width follows the image
    size: 64 * (H // 4) * (W // 4) (64*2*2 for 8x8 digits, 64*7*7 for 28x28 MNIST)."""

    def __init__(self, image_size=(28, 28), in_channels=1, num_classes=10):
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if h < 4 or w < 4:
            raise ValueError(f"LeNet needs images of at least 4x4 (two 2x2 poolings), got {h}x{w}")
        super().__init__(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (h // 4) * (w // 4), 128), nn.ReLU(),
            nn.Linear(128, num_classes),
        )


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the input (through a 1x1 conv + BN when the shape
    changes), then ReLU."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """He et al.'s CIFAR ResNet: 3x3 conv to 16 channels, three stages of n BasicBlocks
    (16, 32, 64 channels; the 2nd and 3rd halve the resolution), global average pooling,
    Linear. depth = 6n + 2: 8, 14, 20, 32..."""

    def __init__(self, depth=20, in_channels=3, num_classes=10, width=16):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNet depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, planes = [], width
        for stage, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2))):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(planes, width * mult, stride if i == 0 else 1))
                planes = width * mult
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(self.pool(out).flatten(1))


def resnet8(**kw):
    return ResNet(8, **kw)


def resnet20(**kw):
    return ResNet(20, **kw)
