"""The pure parts of worker-side error reports: OOM evidence, cgroup files, error history."""

# ruff: noqa: E501 - the kernel log lines are quoted whole

from __future__ import annotations

import os

from dtf.cli.worker_view import context_lines
from dtf.worker import probes
from dtf.worker.context import TreeWatch, capture, tree_of
from events.catalogue import ProcessSample, SystemContext
from projections.analytics.error_history import error_history

# dmesg lines in the kernel's own words (mm/oom_kill.c, v6.x).
KERNEL_LOG = """\
[ 101.5] python3 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0
[ 101.6] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/w,task_memcg=/w,task=python3,pid=4242,uid=0
[ 101.6] Memory cgroup out of memory: Killed process 4242 (python3) total-vm:9000kB, anon-rss:8000kB
[ 205.0] Out of memory: Killed process 777 (java) total-vm:1kB, anon-rss:1kB
"""


def test_oom_lines_of_the_tasks_processes() -> None:
    mine = probes.oom_lines(KERNEL_LOG, {4242})
    assert len(mine) == 2 and all("4242" in line for line in mine)
    assert len(probes.oom_lines(KERNEL_LOG)) == 3
    assert probes.oom_lines(KERNEL_LOG, {1}) == ()


def test_oom_kill_count_from_memory_events() -> None:
    assert probes.oom_kills("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n") == 2
    assert probes.oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n") == 5  # v1
    assert probes.oom_kills(None) is None and probes.oom_kills("max 1\n") is None


def test_own_cgroup_file_v2_walks_up_and_v1_uses_the_controller() -> None:
    v2 = {
        "/proc/self/cgroup": "0::/system.slice/dtf.service\n",
        "/sys/fs/cgroup/system.slice/memory.events": "oom_kill 1\n",
    }
    assert probes.own_cgroup_file(v2.get, "memory.events", ("memory", "x")) == "oom_kill 1\n"
    v1 = {
        "/proc/self/cgroup": "4:cpu,cpuacct:/a\n3:memory:/docker/abc\n",
        "/sys/fs/cgroup/memory/docker/abc/memory.oom_control": "oom_kill 4\n",
    }
    got = probes.own_cgroup_file(v1.get, "memory.events", ("memory", "memory.oom_control"))
    assert got == "oom_kill 4\n"
    assert probes.own_cgroup_file({}.get, "memory.events", ("memory", "x")) == ""


def test_error_history_groups_by_fingerprint_most_frequent_first() -> None:
    kinds = error_history(
        [
            (1.0, "timeout", "timeout after 3s"),
            (2.0, "infrastructure", "disk gone"),
            (3.0, "timeout", "timeout after 5s"),
        ]
    )
    assert [(k.category, k.count) for k in kinds] == [("timeout", 2), ("infrastructure", 1)]
    assert (kinds[0].first_at, kinds[0].last_at, kinds[0].message) == (1.0, 3.0, "timeout after 5s")


def test_live_capture_of_this_process() -> None:
    watch = TreeWatch()
    watch.reset()
    watch.samples = tree_of(os.getpid())
    assert watch.samples[0].pid == os.getpid() and watch.samples[0].rss_mb > 0
    ctx = capture(watch, __import__("pathlib").Path("."), "last words\n")
    assert 0 <= ctx.memory_percent <= 100 and ctx.disk_free_gb > 0
    assert ctx.processes == watch.samples and ctx.output_tail == "last words\n"
    assert tree_of(2**22 + 12345) == ()  # gone: nothing, no error


def test_context_lines_name_what_an_operator_reads() -> None:
    ctx = SystemContext(
        at=0,
        cpu_percent=90,
        memory_percent=97.5,
        memory_available_gb=0.2,
        disk_free_gb=1,
        load=(4.0, 3.0, 2.0),
        processes=(ProcessSample(10, "python3", 900.5, "zombie"),),
        oom=("Out of memory: Killed process 10 (python3)",),
        output_tail="a\nb\n",
    )
    text = "\n".join(context_lines(ctx))
    for part in ("cpu 90%, load 4 3 2", "memory 97.5% used", "10 python3 900.5 MB zombie"):
        assert part in text
    assert "oom: Out of memory" in text and text.endswith("  b")


def test_nvml_usage_per_gpu_and_shuts_down() -> None:
    from types import SimpleNamespace

    calls: list[str] = []
    nvml = SimpleNamespace(
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=lambda i: SimpleNamespace(gpu=[87, 0][i]),
        nvmlDeviceGetMemoryInfo=lambda i: SimpleNamespace(used=[40 * 2**30, 2**29][i]),
    )
    assert probes.nvml_usage(nvml) == ((87.0, 0.0), (40.0, 0.5))
    assert calls == ["init", "shutdown"]
