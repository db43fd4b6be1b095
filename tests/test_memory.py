"""bounded_heap: large freed buffers leave resident memory without it and go back to the OS with it (fresh processes)."""

import subprocess
import sys

import pytest

from shatterbox.memory import bounded_heap, writer_pool

SCRIPT = r"""
import sys, numpy as np
from shatterbox.memory import bounded_heap
scope = bounded_heap()
if sys.argv[1] == "bound":
    assert scope.__enter__()
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
np.ones(12 << 20, np.uint8)  # freed at once: glibc raises its mmap threshold past 12 MiB
base = rss()
keep = []
for i in range(16):  # growing buffers, each followed by a small one that stays alive
    a = np.ones((4 << 20) + i * (64 << 10), np.uint8)
    keep.append(np.ones(4096, np.uint8))
    del a
print(rss() - base)
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")


def retained(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@linux_only
def test_freed_buffers_stay_resident_without_it_and_leave_with_it():
    assert retained("default") >= 6, "the pattern must fragment glibc's heap, or this test shows nothing"
    assert retained("bound") <= 2


@linux_only
def test_bounded_heap_applies_inside_and_relaxes_after(tmp_path):
    """After the block, 3 MiB buffers come from the heap again (no fresh mapping, so no page faults)."""
    code = r"""
import resource, numpy as np
from shatterbox.memory import bounded_heap
def faults_of_buffers():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        a = np.ones(3 << 20, np.uint8); del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
with bounded_heap() as applied:
    inside = faults_of_buffers()
after = faults_of_buffers()
print(applied, inside, after)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    applied, inside, after = out[0] == "True", int(out[1]), int(out[2])
    assert applied and inside >= 50 * 700  # every 3 MiB buffer mapped fresh: 768 faults each
    assert after < inside / 10


def test_writer_pool_is_the_system_allocator():
    assert writer_pool().backend_name == "system"
