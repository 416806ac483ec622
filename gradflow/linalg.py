"""gradflow.linalg, as torch.linalg: norms, inverse, solve, determinants and singular values.

The ops live in gradflow/ops/linalg.py; inv, solve, det, slogdet and svdvals run NumPy's
LAPACK on a host copy (a CUDA tensor goes to the host and back) with gradients in Tensor ops.
"""

from gradflow.ops.linalg import (
    LinAlgError,
    det,
    inv,
    matrix_norm,
    slogdet,
    solve,
    svdvals,
    vector_norm,
)
from gradflow.ops.linalg import linalg_norm as norm

__all__ = ["LinAlgError", "det", "inv", "matrix_norm", "norm", "slogdet", "solve", "svdvals",
           "vector_norm"]
