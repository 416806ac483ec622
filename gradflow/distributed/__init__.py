"""Data-parallel training over MPI (mpi4py), shaped like torch.distributed.

``mpiexec -n 4 python train.py`` (or ``python -m gradflow.distributed.run -n 4 train.py``)
starts the processes; each calls ``init_process_group("mpi")`` and learns its rank. The
collectives work on tensors in place; ``gradflow.nn.parallel.DistributedDataParallel``
averages gradients with them during backward. mpi4py is needed only once a process group is
made: ``pip install "gradflow[mpi]"``.

The examples in these docstrings that need a process group run only under a launcher
(``mpiexec -n 2``), which a doctest does not have: they are marked ``# doctest: +SKIP`` and
show what rank 0 of two processes sees (tests/test_distributed.py runs the real jobs).
"""

from gradflow.distributed.collectives import (
    ReduceOp,
    Work,
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    irecv,
    isend,
    recv,
    reduce_scatter,
    send,
)
from gradflow.distributed.process_group import (
    ProcessGroup,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_cuda_aware,
)

__all__ = [
    "ProcessGroup", "ReduceOp", "Work", "all_gather", "all_reduce", "barrier", "broadcast",
    "destroy_process_group", "get_backend", "get_rank", "get_world_size", "init_process_group",
    "irecv", "is_available", "is_initialized", "is_mpi_cuda_aware", "isend", "recv",
    "reduce_scatter", "send",
]
