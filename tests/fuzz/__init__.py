"""Random public calls into gradflow: each must succeed or raise a clear Python error.

    python -m tests.fuzz --calls 30000        # from the repository root; see --help
    python -m pytest -q fuzz                  # from tests/: a short fixed-seed run

`values` builds arguments (with source text for reproducers), `steps` turns them into
calls, `targets` is the table of what gets called, `harness` runs cases in child processes
and judges how each ended.
"""
