"""Whether operations record the graph: no_grad, enable_grad, set_grad_enabled."""

from __future__ import annotations

import functools


class _GradMode:
    enabled = True
    inference = False  # inside inference_mode()


def is_grad_enabled() -> bool:
    """Whether ops record the graph now (False inside no_grad).

    >>> import gradflow as gf
    >>> with gf.no_grad():
    ...     print(gf.is_grad_enabled())
    False
    """
    return _GradMode.enabled


class set_grad_enabled:
    """Context manager and decorator; also sets the mode at once when called as a function.

    >>> import gradflow as gf
    >>> x = gf.ones(1, requires_grad=True)
    >>> with gf.set_grad_enabled(False):
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode: bool) -> None:
        self.prev = _GradMode.enabled
        self.mode = bool(mode)
        _GradMode.enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        _GradMode.enabled = self.prev  # used as a decorator: undo the eager switch

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class _Mode:
    mode: bool

    def __enter__(self) -> None:
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc) -> None:
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _GradMode.enabled
            _GradMode.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _GradMode.enabled = prev

        return wrapper


class no_grad(_Mode):
    """Operations inside record no graph: outputs do not require grad. Also a decorator.

    >>> import gradflow as gf
    >>> x = gf.ones(1, requires_grad=True)
    >>> with gf.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    mode = False


class enable_grad(_Mode):
    """Operations inside record the graph again (inside no_grad). Also a decorator.

    >>> import gradflow as gf
    >>> x = gf.ones(1, requires_grad=True)
    >>> with gf.no_grad():
    ...     with gf.enable_grad():
    ...         y = x * 2
    >>> y.requires_grad
    True
    """

    mode = True


class inference_mode:
    """Context manager and decorator: no graph is recorded inside, as under no_grad.

    As ``torch.inference_mode(mode=True)``, usable as ``@inference_mode`` or
    ``@inference_mode()``; ``inference_mode(False)`` turns it (and no_grad) off inside. Unlike
    PyTorch's, tensors made inside are ordinary tensors (no "inference tensor" restrictions):
    gradflow's no_grad already records nothing.

    >>> import gradflow as gf
    >>> x = gf.ones(2, requires_grad=True)
    >>> with gf.inference_mode():
    ...     (x * 2).requires_grad, gf.is_inference_mode_enabled()
    (False, True)
    """

    def __new__(cls, mode=True):
        if callable(mode):  # @inference_mode without parentheses
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"inference_mode: argument 'mode' must be bool, not "
                            f"{type(mode).__name__}")
        self.mode = mode

    def __enter__(self) -> None:
        self._prev = (_GradMode.enabled, _GradMode.inference)
        _GradMode.enabled, _GradMode.inference = not self.mode, self.mode

    def __exit__(self, *exc) -> None:
        _GradMode.enabled, _GradMode.inference = self._prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper


def is_inference_mode_enabled() -> bool:
    """Whether an inference_mode() block is active, as torch.is_inference_mode_enabled.

    >>> import gradflow as gf
    >>> gf.is_inference_mode_enabled()
    False
    >>> with gf.inference_mode():
    ...     gf.is_inference_mode_enabled()
    True
    """
    return _GradMode.inference
