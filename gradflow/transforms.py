"""Image transforms for the data pipeline (torchvision.transforms' names and rules).

Images are NumPy arrays laid out H×W or H×W×C (what the dataset readers return, standing in
for PIL images) or gradflow tensors laid out (…, C, H, W). `ToTensor` turns the first kind
into the second. The geometric transforms (Pad, RandomCrop, RandomHorizontalFlip, Resize)
accept both and return the kind they were given; they are data-pipeline operations and do
not record gradients. Random transforms draw from gradflow's global CPU generator, so
`gradflow.manual_seed` (and, in DataLoader workers, the per-worker seed) makes them repeat.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, List, Sequence, Tuple, Union

import numpy as np

from gradflow.utils.data._rng import rand, randint

Size = Union[int, Sequence[int]]


def _is_tensor(x: Any) -> bool:
    from gradflow.tensor import Tensor

    return isinstance(x, Tensor)


def _to_array(img: Any) -> Tuple[np.ndarray, bool]:
    """(values as NumPy, whether img was a tensor)."""
    if _is_tensor(img):
        arr, is_tensor = img.detach().numpy(), True
    elif isinstance(img, np.ndarray):
        arr, is_tensor = img, False
    else:
        raise TypeError(f"img should be a NumPy array or a gradflow Tensor, got {type(img)}")
    if arr.ndim < 2:
        raise ValueError(f"img should have at least 2 dimensions (H, W), got shape {arr.shape}")
    return arr, is_tensor


def _hw_axes(arr: np.ndarray, is_tensor: bool) -> Tuple[int, int]:
    """The height and width axes: (…, H, W) for tensors, (H, W[, C]) for arrays."""
    return (arr.ndim - 2, arr.ndim - 1) if is_tensor else (0, 1)


def _like(arr: np.ndarray, img: Any) -> Any:
    """`arr` as the same kind of image as `img` (tensor on img's device, or array)."""
    if not _is_tensor(img):
        return arr
    import gradflow

    out = gradflow.from_numpy(np.ascontiguousarray(arr))
    return out if str(img.device) == "cpu" else out.to(img.device)


def _pair(size: Size, name: str) -> Tuple[int, int]:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: size should be an int or a sequence of 1 or 2 ints, got {size!r}")


class Compose:
    """Apply transforms one after another.

    >>> import gradflow.transforms as T
    >>> to_input = T.Compose([T.ToTensor(), T.Normalize([0.5], [0.5])])
    >>> to_input(np.array([[0, 255]], dtype=np.uint8))
    tensor([[[-1.,  1.]]])
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


class Lambda:
    """Apply a user function.

    >>> import gradflow.transforms as T
    >>> T.Lambda(lambda x: x * 2)(gf.ones(2))
    tensor([2., 2.])
    """

    def __init__(self, lambd: Callable) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ToTensor:
    """H×W×C (or H×W) NumPy image -> C×H×W (or 1×H×W) tensor.

    uint8 values are scaled to float32 in [0, 1] (x / 255); float32/float64 arrays keep their
    values and dtype; bool and other integer arrays become float32 without scaling.

    >>> import gradflow.transforms as T
    >>> T.ToTensor()(np.zeros((32, 32, 3), dtype=np.uint8)).shape
    gradflow.Size([3, 32, 32])
    """

    def __call__(self, pic: Any) -> Any:
        import gradflow

        if not isinstance(pic, np.ndarray):
            raise TypeError(f"ToTensor: pic should be a NumPy array, got {type(pic)}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional, got shape {pic.shape}")
        chw = (pic[None] if pic.ndim == 2 else pic.transpose(2, 0, 1))
        if pic.dtype == np.uint8:
            out = chw.astype(np.float32) / np.float32(255)
        elif pic.dtype in (np.float32, np.float64):
            out = chw
        else:
            out = chw.astype(np.float32)
        return gradflow.from_numpy(np.ascontiguousarray(out))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """Per channel: out[c] = (x[c] - mean[c]) / std[c] on a float tensor (…, C, H, W).

    >>> import gradflow.transforms as T
    >>> T.Normalize(mean=[1.0, 2.0], std=[1.0, 2.0])(gf.ones(2, 1, 1)).flatten()
    tensor([ 0.0000, -0.5000])
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean = [float(m) for m in np.atleast_1d(mean)]
        self.std = [float(s) for s in np.atleast_1d(std)]
        self.inplace = inplace

    def __call__(self, tensor: Any) -> Any:
        import gradflow

        if not _is_tensor(tensor):
            raise TypeError(f"Normalize: expected a gradflow Tensor, got {type(tensor)}")
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"Normalize: input tensor should be a float tensor, got {tensor.dtype}")
        if tensor.ndim < 3:
            raise ValueError(
                "Normalize: expected a tensor image of size (..., C, H, W), got "
                f"shape {tuple(tensor.shape)}"
            )
        std = np.asarray(self.std, dtype=tensor.dtype.np)
        if (std == 0).any():
            raise ValueError(
                f"Normalize: std evaluated to zero after conversion to {tensor.dtype}, "
                "leading to division by zero"
            )
        mean = gradflow.tensor(self.mean, dtype=tensor.dtype, device=tensor.device)
        std_t = gradflow.tensor(self.std, dtype=tensor.dtype, device=tensor.device)
        mean, std_t = mean.reshape(-1, 1, 1), std_t.reshape(-1, 1, 1)
        if self.inplace:
            return tensor.sub_(mean).div_(std_t)
        return (tensor - mean) / std_t

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def _padding4(padding: Union[int, Sequence[int]]) -> Tuple[int, int, int, int]:
    """(left, top, right, bottom) from an int, a (left/right, top/bottom) pair or 4 ints."""
    if isinstance(padding, numbers.Integral):
        p = (int(padding),) * 4
    elif isinstance(padding, Sequence) and len(padding) in (1, 2, 4):
        v = [int(x) for x in padding]
        p = tuple(v * 4 if len(v) == 1 else v * 2 if len(v) == 2 else v)
    else:
        raise ValueError(f"Pad: padding should be an int or a sequence of 1, 2 or 4 ints, "
                         f"got {padding!r}")
    if any(x < 0 for x in p):
        raise ValueError(f"Pad: padding must be non-negative, got {padding!r}")
    return p  # type: ignore[return-value]


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect",
              "symmetric": "symmetric"}


def _pad(img: Any, padding, fill: float, padding_mode: str) -> Any:
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"Pad: padding_mode should be one of {sorted(_PAD_MODES)}, "
                         f"got '{padding_mode}'")
    left, top, right, bottom = _padding4(padding)
    arr, is_tensor = _to_array(img)
    ah, aw = _hw_axes(arr, is_tensor)
    width = [(0, 0)] * arr.ndim
    width[ah], width[aw] = (top, bottom), (left, right)
    kwargs = {"constant_values": fill} if padding_mode == "constant" else {}
    return _like(np.pad(arr, width, mode=_PAD_MODES[padding_mode], **kwargs), img)


class Pad:
    """Pad the borders: padding is an int (all sides), (left/right, top/bottom) or
    (left, top, right, bottom); padding_mode is 'constant' (with `fill`), 'edge', 'reflect'
    (mirror without repeating the edge) or 'symmetric' (mirror repeating it).

    >>> import gradflow.transforms as T
    >>> T.Pad(1)(gf.ones(3, 4, 4)).shape
    gradflow.Size([3, 6, 6])
    """

    def __init__(self, padding, fill: float = 0, padding_mode: str = "constant") -> None:
        _padding4(padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"Pad: padding_mode should be one of {sorted(_PAD_MODES)}, "
                             f"got '{padding_mode}'")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Any) -> Any:
        return _pad(img, self.padding, self.fill, self.padding_mode)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(padding={self.padding}, fill={self.fill}, "
                f"padding_mode={self.padding_mode})")


class RandomCrop:
    """Crop a random size[0]×size[1] window, after optional padding (see Pad). With
    `pad_if_needed`, an image smaller than the window is padded up to it first. The top-left
    corner is uniform over all windows that fit: top in [0, H - h], then left in [0, W - w].

    >>> import gradflow.transforms as T
    >>> gf.manual_seed(0)
    >>> T.RandomCrop(28, padding=4)(gf.ones(1, 28, 28)).shape
    gradflow.Size([1, 28, 28])
    """

    def __init__(self, size: Size, padding=None, pad_if_needed: bool = False, fill: float = 0,
                 padding_mode: str = "constant") -> None:
        self.size = _pair(size, "RandomCrop")
        if padding is not None:
            _padding4(padding)
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    def __call__(self, img: Any) -> Any:
        if self.padding is not None:
            img = _pad(img, self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        arr, is_tensor = _to_array(img)
        ah, aw = _hw_axes(arr, is_tensor)
        h, w = arr.shape[ah], arr.shape[aw]
        if self.pad_if_needed and (h < th or w < tw):
            dw, dh = max(tw - w, 0), max(th - h, 0)
            img = _pad(img, (dw, dh), self.fill, self.padding_mode)
            arr, _ = _to_array(img)
            h, w = arr.shape[ah], arr.shape[aw]
        if h < th or w < tw:
            raise ValueError(
                f"RandomCrop: required crop size {(th, tw)} is larger than input image size "
                f"{(h, w)}"
            )
        top = randint(0, h - th + 1)
        left = randint(0, w - tw + 1)
        key = [slice(None)] * arr.ndim
        key[ah], key[aw] = slice(top, top + th), slice(left, left + tw)
        return _like(arr[tuple(key)], img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right with probability p (one uniform draw u; flip when u < p).

    >>> import gradflow.transforms as T
    >>> T.RandomHorizontalFlip(p=1.0)(gf.tensor([[[1.0, 2.0, 3.0]]]))
    tensor([[[3., 2., 1.]]])
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Any) -> Any:
        if rand() < self.p:
            arr, is_tensor = _to_array(img)
            return _like(np.flip(arr, _hw_axes(arr, is_tensor)[1]), img)
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


def _source_index_bilinear(n_out: int, n_in: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel centres (align_corners=False): src = (i + 0.5) * n_in / n_out - 0.5,
    clamped at 0; returns (i0, i1, weight of i1)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def _resize_array(arr: np.ndarray, ah: int, aw: int, out_hw: Tuple[int, int],
                  interpolation: str) -> np.ndarray:
    (oh, ow), (h, w) = out_hw, (arr.shape[ah], arr.shape[aw])
    if interpolation == "nearest":
        # src = floor(i * n_in / n_out), PyTorch's 'nearest'
        rows = np.minimum((np.arange(oh) * h) // oh, h - 1)
        cols = np.minimum((np.arange(ow) * w) // ow, w - 1)
        return np.take(np.take(arr, rows, axis=ah), cols, axis=aw)
    x = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32)
    for axis, n_out, n_in in ((ah, oh, h), (aw, ow, w)):
        i0, i1, wt = _source_index_bilinear(n_out, n_in)
        shape = [1] * x.ndim
        shape[axis] = n_out
        wt = wt.astype(x.dtype).reshape(shape)
        x = np.take(x, i0, axis=axis) * (1 - wt) + np.take(x, i1, axis=axis) * wt
    if arr.dtype == np.uint8:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if arr.dtype.kind in "iub":
        return np.rint(x).astype(arr.dtype)
    return x.astype(arr.dtype, copy=False)


class Resize:
    """Resize to `size`: (h, w), or an int matched by the shorter side with the aspect ratio
    kept (long side = int(size * long / short), torchvision's rule).

    interpolation='bilinear' (the default, as in torchvision) uses half-pixel centres like
    torch.nn.functional.interpolate(mode='bilinear', align_corners=False) without
    antialiasing; 'nearest' picks src = floor(i * in / out). uint8 results are rounded.

    >>> import gradflow.transforms as T
    >>> T.Resize(16)(gf.ones(3, 8, 12)).shape
    gradflow.Size([3, 16, 24])
    """

    def __init__(self, size: Size, interpolation: str = "bilinear") -> None:
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"Resize: interpolation should be 'bilinear' or 'nearest', got '{interpolation}'"
            )
        if isinstance(size, numbers.Integral):
            if size <= 0:
                raise ValueError(f"Resize: size must be positive, got {size}")
        else:
            h, w = _pair(size, "Resize")
            if h <= 0 or w <= 0:
                raise ValueError(f"Resize: size must be positive, got {size!r}")
        self.size, self.interpolation = size, interpolation

    def _out_hw(self, h: int, w: int) -> Tuple[int, int]:
        if isinstance(self.size, numbers.Integral):
            s = int(self.size)
            return (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        return _pair(self.size, "Resize")

    def __call__(self, img: Any) -> Any:
        arr, is_tensor = _to_array(img)
        ah, aw = _hw_axes(arr, is_tensor)
        out_hw = self._out_hw(arr.shape[ah], arr.shape[aw])
        return _like(_resize_array(arr, ah, aw, out_hw, self.interpolation), img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation})"


__all__: List[str] = [
    "Compose", "Lambda", "Normalize", "Pad", "RandomCrop", "RandomHorizontalFlip", "Resize",
    "ToTensor",
]
