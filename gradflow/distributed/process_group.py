"""The process group: which process this is and how many there are, from MPI (mpi4py).

MPI starts the processes (``mpiexec -n N python train.py``) and numbers them; one process
group spans all of them (MPI's COMM_WORLD). mpi4py is imported only when a group is made, so
gradflow imports and works without it. Examples that need a group are skipped as doctests
(they need ``mpiexec``; see gradflow.distributed).
"""

from __future__ import annotations

import ctypes
import datetime
import os
import sys
from typing import Optional

_INSTALL = 'install MPI with: pip install "gradflow[mpi]" (mpi4py and mpich)'


class ProcessGroup:
    """The processes taking part in collectives: an MPI communicator, this process's rank in
    it, its size, whether MPI reads CUDA memory directly, and how long a collective may wait.
    init_process_group makes the one group there is; the collectives' `group=None` means it.
    """

    def __init__(self, comm, timeout: datetime.timedelta) -> None:
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = timeout
        self.cuda_aware = _cuda_aware(sys.modules["mpi4py.MPI"])

    def __repr__(self) -> str:
        return (f"ProcessGroup(backend='mpi', rank={self.rank}, size={self.size}, "
                f"cuda_aware={self.cuda_aware})")


_world: Optional[ProcessGroup] = None
_excepthook = None


def _mpi():
    """mpi4py's MPI module (initialising MPI on first import), or a clear ImportError."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"gradflow.distributed needs mpi4py: {_INSTALL}") from exc
    return MPI


def is_available() -> bool:
    """Whether mpi4py can be imported (MPI itself is only started by init_process_group).

    >>> import gradflow.distributed as dist
    >>> dist.is_available() in (True, False)
    True
    """
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _cuda_aware(MPI) -> bool:
    """Whether MPI can read and write CUDA memory itself. GRADFLOW_MPI_CUDA_AWARE=0/1 says so
    explicitly; otherwise MPICH's and Open MPI's MPIX_Query_cuda_support() decides."""
    forced = os.environ.get("GRADFLOW_MPI_CUDA_AWARE")
    if forced is not None:
        return forced.strip() not in ("", "0", "false", "False")
    try:
        query = ctypes.CDLL(MPI.__file__).MPIX_Query_cuda_support
    except (OSError, AttributeError):
        return False
    query.restype = ctypes.c_int
    return bool(query())


def init_process_group(backend: str = "mpi", init_method: Optional[str] = None,
                       timeout: Optional[datetime.timedelta] = None, world_size: int = -1,
                       rank: int = -1) -> None:
    """Join the process group of all processes mpiexec started (rank and size come from MPI;
    world_size and rank, when given, must agree with it). A collective that waits longer than
    `timeout` (default 30 minutes) raises. With more than one process, an exception that
    nothing catches aborts every rank, so the others do not wait for it forever.

    >>> import gradflow.distributed as dist
    >>> dist.is_initialized()
    False
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> dist.get_rank(), dist.get_world_size()  # doctest: +SKIP
    (0, 2)
    """
    global _world, _excepthook
    if backend not in ("mpi", "MPI"):
        raise ValueError(f"init_process_group: backend {backend!r} is not available; "
                         "gradflow.distributed runs over MPI: use backend='mpi'")
    if _world is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group "
                           "twice!")
    if timeout is None:
        timeout = datetime.timedelta(minutes=30)
    if not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta, got "
                        f"{type(timeout).__name__}")
    comm = _mpi().COMM_WORLD
    for name, given, actual in (("world_size", world_size, comm.Get_size()),
                                ("rank", rank, comm.Get_rank())):
        if given != -1 and given != actual:
            raise ValueError(f"init_process_group: {name}={given} but MPI says {actual}; "
                             f"leave {name} out: MPI sets it (mpiexec -n N)")
    _world = ProcessGroup(comm, timeout)
    if _world.size > 1:
        _excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught


def _abort_on_uncaught(exc_type, exc, tb) -> None:
    """Print the traceback as usual, then end every rank (MPI_Abort) with exit status 1."""
    _excepthook(exc_type, exc, tb)
    sys.stderr.write(f"gradflow.distributed: rank {_world.rank} raised {exc_type.__name__}; "
                     "aborting all ranks\n")
    sys.stderr.flush()
    _world.comm.Abort(1)


def destroy_process_group() -> None:
    """Leave the process group (MPI itself stays up, so a new group can be made).

    >>> import gradflow.distributed as dist
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> dist.destroy_process_group()  # doctest: +SKIP
    >>> dist.is_initialized()
    False
    """
    global _world, _excepthook
    _group("destroy_process_group")
    if _excepthook is not None:
        sys.excepthook = _excepthook
        _excepthook = None
    _world = None


def is_initialized() -> bool:
    """Whether init_process_group has made the default process group (and it is not destroyed).

    >>> import gradflow.distributed as dist
    >>> dist.is_initialized()
    False
    """
    return _world is not None


def _group(op: str) -> ProcessGroup:
    if _world is None:
        raise RuntimeError(f"{op}: Default process group has not been initialized, please make "
                           "sure to call init_process_group.")
    return _world


def get_rank() -> int:
    """This process's rank in the default group, 0 .. world size - 1.

    >>> import gradflow.distributed as dist
    >>> dist.get_rank()
    Traceback (most recent call last):
        ...
    RuntimeError: get_rank: Default process group has not been initialized, ...
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> dist.get_rank()  # doctest: +SKIP
    0
    """
    return _group("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the default group.

    >>> import gradflow.distributed as dist
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> dist.get_world_size()  # doctest: +SKIP
    2
    """
    return _group("get_world_size").size


def get_backend() -> str:
    """The default group's backend: "mpi", the only one gradflow has.

    >>> import gradflow.distributed as dist
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> dist.get_backend()  # doctest: +SKIP
    'mpi'
    """
    _group("get_backend")
    return "mpi"


def is_mpi_cuda_aware() -> bool:
    """Whether CUDA tensors go to MPI directly (True) or are staged through host memory.

    >>> import gradflow.distributed as dist
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> dist.is_mpi_cuda_aware()  # doctest: +SKIP
    False
    """
    return _group("is_mpi_cuda_aware").cuda_aware
