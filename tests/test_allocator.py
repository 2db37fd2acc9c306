"""mannrl_gym.allocator: freed blocks are reused, so a weight-sized temporary made and dropped
again and again touches no fresh pages (the page faults each f update paid before)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

PROBE = """
import resource, sys, torch
from mannrl_gym.allocator import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory() and keep_freed_memory()
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
    plain, kept = _faults("plain"), _faults("kept")
    # plain: the freed 100 MB trimmed from the heap each cycle and faulted back in (25,000 to
    # 120,000 faults in 5 cycles here); kept: none, or now and then one block's (1,216)
    assert plain >= 10_000
    assert kept <= 2 * 1216 and kept * 10 <= plain


def test_the_trainer_keeps_freed_memory(tmp_path):
    """`mannrl train` turns it on (in a process of its own: it lasts for good)."""
    code = ("import sys; sys.path.insert(0, 'tests'); from conftest import small_config; "
            "from mannrl_gym import allocator, trainer; "
            f"trainer.train(small_config(epochs=1, out_dir={str(tmp_path)!r})); "
            "print(allocator._kept)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "True"
