"""Hardware hints read from test sources (`dtf.ci.analysis`)."""

from __future__ import annotations

import textwrap

from dtf.ci.analysis import Finding, analyse, function_id, missing, qualname, suggested
from events.catalogue import Requirements


def wanted(source: str, test: str = "test_it") -> Requirements:
    return suggested(analyse(textwrap.dedent(source)).of(test))


def test_plain_code_suggests_nothing() -> None:
    assert (
        wanted("import torch\ndef test_it():\n    assert torch.ones(3).sum() == 3\n")
        == Requirements()
    )


def test_cuda_calls_devices_and_modules() -> None:
    assert wanted("def test_it():\n    assert torch.cuda.is_available()\n").gpus == 1
    assert wanted("def test_it(model):\n    model.cuda()\n").gpus == 1
    assert wanted("def test_it():\n    x = torch.zeros(2, device='cuda:1')\n").gpus == 1
    assert wanted("def test_it():\n    import cupy\n") == Requirements(gpus=1, gpu_vendor="nvidia")
    assert wanted("from numba import cuda\ndef test_it():\n    pass\n").gpu_vendor == "nvidia"
    assert wanted("def test_it():\n    jax.devices('gpu')\n").gpus == 1


def test_rocm_and_mps() -> None:
    assert wanted("def test_it():\n    assert torch.version.hip\n") == Requirements(
        gpus=1, gpu_vendor="amd"
    )
    assert wanted("def test_it():\n    torch.backends.mps.is_available()\n").platform == "darwin"
    assert wanted("def test_it():\n    x.to('mps')\n").platform == "darwin"


def test_a_docstring_mentioning_cuda_is_no_device() -> None:
    assert wanted('def test_it():\n    """cuda: not needed here"""\n') == Requirements()


def test_markers_on_the_test_and_its_class() -> None:
    source = """
        import pytest

        @pytest.mark.gpu
        def test_it():
            pass

        @pytest.mark.cuda
        class TestGroup:
            def test_inner(self):
                pass

        @pytest.mark.skipif(not torch.cuda.is_available(), reason="no gpu")
        def test_skipped():
            pass
    """
    hints = analyse(textwrap.dedent(source))
    assert suggested(hints.of("test_it")).gpus == 1
    assert suggested(hints.of("TestGroup.test_inner")).gpus == 1
    assert suggested(hints.of("test_skipped")).gpus == 1


def test_module_level_hints_apply_to_every_test() -> None:
    hints = analyse("import pycuda.autoinit\ndef test_a():\n    pass\ndef test_b():\n    pass\n")
    assert (
        suggested(hints.of("test_a"))
        == suggested(hints.of("test_b"))
        == Requirements(gpus=1, gpu_vendor="nvidia")
    )


def test_literal_allocations_of_a_gigabyte_or_more() -> None:
    assert wanted("def test_it():\n    np.zeros((2**15, 2**15))\n").memory_gb == 8  # float64
    assert wanted("def test_it():\n    torch.empty(2**30)\n").memory_gb == 4  # float32
    assert wanted("def test_it():\n    np.ones((1 << 30,), dtype=np.uint8)\n").memory_gb == 1
    assert wanted("def test_it():\n    bytearray(3 * 1024**3)\n").memory_gb == 3
    assert wanted("def test_it():\n    b'x' * (5 * 2**30 + 1)\n").memory_gb == 6
    assert wanted("def test_it():\n    [0] * 2**28\n").memory_gb == 2
    # Small, or not literal: nothing to say.
    assert wanted("def test_it():\n    np.zeros((1000, 1000))\n") == Requirements()
    assert wanted("def test_it(n):\n    np.zeros((n, n))\n") == Requirements()


def test_a_file_that_does_not_parse_gives_no_hints() -> None:
    assert analyse("def test_it(:\n").of("test_it") == []


def test_missing_is_what_the_declaration_does_not_cover() -> None:
    want = Requirements(gpus=1, gpu_vendor="nvidia", memory_gb=8)
    assert missing(Requirements(gpus=1), want) == Requirements(memory_gb=8)
    assert missing(Requirements(gpus=2, memory_gb=16), want) == Requirements()
    assert missing(Requirements(), want) == want


def test_finding_status_and_ids() -> None:
    hints = tuple(analyse("def test_it():\n    torch.cuda.synchronize()\n").of("test_it"))
    assert (
        Finding("a.py::test_it", 1, Requirements(), suggested(list(hints)), hints).status
        == "missing"
    )
    assert (
        Finding("a.py::test_it", 1, Requirements(gpus=1), suggested(list(hints)), hints).status
        == "ok"
    )
    assert Finding("a.py::t", 1, Requirements(cpus=4), Requirements(), ()).status == "declared"
    assert function_id("a.py::T::test_x[1-a::b]") == "a.py::T::test_x"
    assert qualname("a.py::T::test_x") == "T.test_x"
