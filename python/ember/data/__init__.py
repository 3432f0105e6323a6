"""ember.data: datasets, DataLoader and image transforms (torch.utils.data / torchvision names)."""
from . import transforms
from .dataset import Dataset, TensorDataset
from .datasets import CIFAR10, DIGITS_MEAN, DIGITS_STD, MNIST, Digits, FashionMNIST, digits, read_idx
from .loader import DataLoader, default_collate
