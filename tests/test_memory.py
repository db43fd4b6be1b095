"""bound_heap: large freed buffers leave resident memory (checked in fresh processes, both ways)."""

import subprocess
import sys

import pytest

from shatterbox.memory import bound_heap, writer_pool

SCRIPT = r"""
import sys, numpy as np
from shatterbox.memory import bound_heap
if sys.argv[1] == "bound":
    assert bound_heap()
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
def test_bound_heap_applies_once_and_reports_it():
    assert bound_heap() is True
    assert bound_heap() is True


def test_writer_pool_is_the_system_allocator():
    assert writer_pool().backend_name == "system"
