"""gradflow: a readable mini-PyTorch with native CPU and CUDA kernels."""

__version__ = "0.1.0"

from gradflow import (
    accelerator,  # noqa: E402
    autograd,  # noqa: E402
    cuda,  # noqa: E402
)
from gradflow.autograd import (  # noqa: E402
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from gradflow.config import get_num_threads, set_num_threads, show_config  # noqa: E402
from gradflow.op_table import UNARY as _UNARY  # noqa: E402
from gradflow.ops import elementwise as _elementwise  # noqa: E402
from gradflow.ops.elementwise import (  # noqa: E402
    add,
    allclose,
    clamp,
    clip,
    div,
    elu,
    eq,
    equal,
    ge,
    gelu,
    gt,
    isclose,
    le,
    leaky_relu,
    logical_and,
    logical_or,
    logical_xor,
    lt,
    masked_fill,
    maximum,
    minimum,
    mul,
    ne,
    pow,
    remainder,
    silu,
    softplus,
    sub,
    true_divide,
    where,
)

for _row in _UNARY:  # gradflow.exp, gradflow.sigmoid, ...: one per row of the unary table
    globals()[_row.name] = getattr(_elementwise, _row.name)
from gradflow.ops.einsum import einsum  # noqa: E402
from gradflow.ops.index import (  # noqa: E402
    argsort,
    gather,
    index_add,
    index_select,
    masked_select,
    nonzero,
    scatter,
    scatter_add,
    sort,
    topk,
    unique,
)
from gradflow.ops.linalg import (  # noqa: E402
    addmm,
    baddbmm,
    bmm,
    cdist,
    det,
    diag,
    dot,
    inverse,
    matmul,
    mm,
    outer,
    slogdet,
    tril,
    triu,
)
from gradflow.ops.random import multinomial, normal  # noqa: E402
from gradflow.ops.reduce import (  # noqa: E402
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    cumprod,
    cumsum,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    softmax,
    std,
    sum,
    var,
)
from gradflow.ops.shape import (  # noqa: E402
    broadcast_to,
    cat,
    chunk,
    clone,
    concat,
    expand,
    flatten,
    flip,
    meshgrid,
    narrow,
    pad,
    permute,
    repeat,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    t,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
)
from gradflow.tensor import (  # noqa: E402
    Size,
    Tensor,
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    manual_seed,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from gradflow.types import (  # noqa: E402
    bfloat16,
    bool_,
    byte,
    char,
    device,
    double,
    dtype,
    finfo,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    promote_types,
    set_default_dtype,
    short,
    uint8,
)

bool = bool_  # gradflow.bool, as torch.bool
int = int32  # gradflow.int, as torch.int (shadows the builtin from here on in this file)

# after Tensor: they build on it
from gradflow import datasets, linalg, nn, optim, transforms, utils  # noqa: E402
from gradflow.serialization import load, save  # noqa: E402
from gradflow.utils.data import Generator  # noqa: E402
