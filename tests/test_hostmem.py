"""The host-memory count and refusal (``spense.hostmem``)."""

from __future__ import annotations

import pytest

from spense import hostmem
from spense.errors import InputError


def test_mem_available_reads_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       2000 kB\nMemAvailable:   1000 kB\nSwapTotal: 800 kB\nSwapFree:        500 kB\n")
    no_cg = {"cgroup_root": str(tmp_path / "none"), "self_cgroup": str(tmp_path / "none")}  # whatever limits CI
    assert hostmem.mem_available(meminfo=str(f), **no_cg) == 1000 * 1024
    assert hostmem.mem_available(swap=True, meminfo=str(f), **no_cg) == 1500 * 1024
    f.write_text("MemTotal:       2000 kB\nMemAvailable:   1000 kB\n")  # no swap line: unknown, not zero
    assert hostmem.mem_available(swap=True, meminfo=str(f), **no_cg) is None
    assert hostmem.mem_available(meminfo=str(tmp_path / "none"), **no_cg) is None


def test_check_fits():
    hostmem.check_fits(10, "x", "y", available=10)
    with pytest.raises(InputError, match=r"^loading m needs 2\.0 GB of host memory; 1\.0 GB are available "
                                         r"\(free memory and swap\)\. Use more\.$"):
        hostmem.check_fits(2 * 10**9, "loading m", "Use more.", available=10**9)


def test_a_model_too_large_for_the_host_is_refused_before_its_load(tiny_llama_dir, monkeypatch):
    """The count comes from the safetensors headers: float32 needs 4 bytes an element, bfloat16 2."""
    import torch

    from spense.hf import load_model
    from spense.weights import check_weights_readable

    numel = check_weights_readable(tiny_llama_dir)
    monkeypatch.setattr(hostmem, "mem_available", lambda swap=False: 3 * numel)
    with pytest.raises(InputError, match=rf"^loading {tiny_llama_dir} in float32 \(0\.00 B weights\) needs "
                                         r"0\.0 GB of host memory; 0\.0 GB are available"):
        load_model(tiny_llama_dir)
    assert load_model(tiny_llama_dir, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_a_memory_cgroups_limit_counts_as_the_hosts(tmp_path):
    """Slurm, Kubernetes and Docker bound a job by its cgroup, not by the host's free memory: the smaller counts,
    the page cache given back (v2 ``file``, v1 ``total_cache``), and no limit ("max", v1's huge number) is none."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:   1000000 kB\nSwapFree: 0 kB\n")  # 1.024 GB
    v2 = tmp_path / "v2"
    (v2 / "job").mkdir(parents=True)
    (v2 / "job" / "memory.max").write_text("500000000\n")
    (v2 / "job" / "memory.current").write_text("300000000\n")
    (v2 / "job" / "memory.stat").write_text("anon 100000000\nfile 200000000\n")
    me = tmp_path / "self_cgroup"
    me.write_text("0::/job\n")
    assert hostmem.cgroup_available(str(v2), str(me)) == 400_000_000  # 500 - (300 - 200 of page cache)
    assert hostmem.mem_available(True, str(meminfo), str(v2), str(me)) == 400_000_000
    (v2 / "job" / "memory.max").write_text("max\n")
    assert hostmem.cgroup_available(str(v2), str(me)) is None
    assert hostmem.mem_available(True, str(meminfo), str(v2), str(me)) == 1_024_000_000

    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)  # a container: its own cgroup at the root, not under the path it is named by
    (v1 / "memory" / "memory.limit_in_bytes").write_text("2000000000\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("1500000000\n")
    (v1 / "memory" / "memory.stat").write_text("cache 5\ntotal_cache 700000000\n")
    me.write_text("12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n")
    assert hostmem.cgroup_available(str(v1), str(me)) == 1_200_000_000
    assert hostmem.mem_available(False, str(meminfo), str(v1), str(me)) == 1_024_000_000  # the host's is smaller
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert hostmem.cgroup_available(str(v1), str(me)) is None
    assert hostmem.cgroup_available(str(tmp_path / "none"), str(tmp_path / "none")) is None
