"""PixelShuffle and PixelUnshuffle: sub-pixel convolution's rearrangement of channels into
space and back (Shi et al., 2016). The functional forms live in nn.functional."""

from __future__ import annotations

from gradflow.nn import functional as F
from gradflow.nn.module import Module
from gradflow.ops.common import as_int
from gradflow.tensor import Tensor

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r) with r = upscale_factor.

    >>> nn.PixelShuffle(2)(gf.zeros(1, 8, 3, 3)).shape
    gradflow.Size([1, 2, 6, 6])
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = as_int(upscale_factor, "PixelShuffle", "upscale_factor")

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W) with r = downscale_factor.

    >>> nn.PixelUnshuffle(2)(gf.zeros(1, 2, 6, 6)).shape
    gradflow.Size([1, 8, 3, 3])
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = as_int(downscale_factor, "PixelUnshuffle", "downscale_factor")

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
