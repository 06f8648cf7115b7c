"""The environment a worker process starts with: settings the C library reads before any Python runs.

``portal worker`` execs the dramatiq CLI with it (dramatiq then forks its worker processes, which inherit
the allocator's state, so it must be in place before the first ``malloc``: setting ``os.environ`` later
changes nothing). bench/evidence.py starts its worker children with the same environment.
"""

from __future__ import annotations

from collections.abc import Mapping

#: glibc's malloc gives threads that allocate concurrently arenas of their own (up to 8 per core), and
#: memory freed in one arena is kept there for that arena's next allocations, not handed to another. A
#: worker decodes one photo at a time (``processing._SLOTS``), but on whichever thread of the pool picks
#: the message up: with one arena per thread, every thread that ever made derivatives keeps a freed ~16 MiB
#: of picture buffers resident, and the peak grows with the thread count (measured: 2 threads 183 MiB,
#: one shared arena 148 MiB). One arena: the next photo reuses the last one's memory. What it costs is lock
#: contention on malloc, which this workload does not show (small objects go to Python's own allocator;
#: Pillow's codecs release the GIL but allocate a few big buffers per picture). An operator's own value wins.
#:
#: ``MALLOC_MMAP_THRESHOLD_``: glibc serves an allocation above the threshold with its own ``mmap`` and
#: returns it to the system when freed, but by default it *raises* the threshold to the size of every such
#: block freed, so after the first photo the ~12 MiB picture buffers come from the heap instead, where a
#: small block still in use above them (the previous photo's 3 MiB display copy, being encoded beside the
#: next decode) keeps the freed space from going back: the peak crept up by ~15 MiB. A fixed value turns
#: the adjustment off. 1 MiB: every picture buffer is mapped and unmapped (measured: peak 144 MiB instead
#: of 162, at ~5 ms more CPU a photo for the fresh pages), while the small, frequent allocations stay on
#: the heap (128 KiB, glibc's starting value, gave the same peak at a lower throughput).
MALLOC_ENV: Mapping[str, str] = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def worker_environ(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus :data:`MALLOC_ENV` for the variables ``base`` does not set."""
    env = dict(base)
    for name, value in MALLOC_ENV.items():
        env.setdefault(name, value)
    return env
