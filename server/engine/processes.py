"""The engine's child processes at shutdown: whether one still runs, and the shared memory
that processes killed before they could clean up leave behind (vLLM's EngineCore and workers).
"""

from __future__ import annotations

import contextlib
import os


def running(process) -> bool:
    """Not exited (a zombie has: only its exit status is left, for its parent to collect)."""
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def shared_memory(processes) -> set[str]:
    """The multiprocessing shared-memory segments (``/dev/shm/psm_*``) the processes map."""
    found = set()
    for process in processes:
        try:
            with open(f"/proc/{process.pid}/maps") as maps:
                found.update(line.split(None, 5)[-1].strip() for line in maps
                             if "/dev/shm/psm_" in line)
        except OSError:
            continue
    return found


def release_shared_memory(paths: set[str]) -> None:
    """Unlink the segments left by engine processes that were killed before they could, and
    unregister them from the resource tracker (shared with them), which would otherwise warn
    about "leaked shared_memory objects" at exit. A segment still present was created, and
    registered, by one of those processes (vLLM's readers open theirs unregistered)."""
    from multiprocessing import resource_tracker

    for path in sorted(paths):
        try:
            os.unlink(path)
        except OSError:
            continue  # unlinked by its creator, which also unregistered it
        with contextlib.suppress(Exception):
            resource_tracker.unregister("/" + os.path.basename(path), "shared_memory")
