"""mannrl_gym.allocator: freed blocks are reused, so a weight-sized temporary made and dropped
again and again touches no fresh pages (the page faults each f update paid before)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

PROBE = """
import ctypes, resource, sys, torch
from mannrl_gym import allocator
if sys.argv[1] == "kept":
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory()
else:  # glibc's starting thresholds, held (as it comes they move, with the address layout)
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    assert mallopt(allocator.M_MMAP_THRESHOLD, 128 << 10)
    assert mallopt(allocator.M_TRIM_THRESHOLD, 128 << 10)
weight = torch.rand(1216, 1024)  # f's body on the sentence task, 4.98 MB
def cycle():  # 20 weight-sized temporaries alive at once (an update's gradients, its
    held = [weight.sqrt() for _ in range(20)]  # optimizer's passes), then all dropped
cycle()
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.split()[-1])


def test_kept_memory_takes_no_page_faults_where_plain_malloc_does():
    """glibc as it comes faulted 1,216 to 121,445 pages in these 5 cycles (eight probes: its
    thresholds move with each free and the address layout); at its starting thresholds every
    block is mapped afresh, 5 x 20 x 1,216 pages; kept: none, or now and then one block's."""
    plain, kept = _faults("plain"), _faults("kept")
    assert plain >= 5 * 20 * 1216 * 0.9
    assert kept <= 2 * 1216


def test_the_trainer_keeps_freed_memory(tmp_path):
    """`mannrl train` turns it on (in a process of its own: it lasts for good)."""
    code = ("import sys; sys.path.insert(0, 'tests'); from conftest import small_config; "
            "from mannrl_gym import allocator, trainer; "
            f"trainer.train(small_config(epochs=1, out_dir={str(tmp_path)!r})); "
            "print(allocator._kept)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "True"
