"""What a test's source says about the hardware it needs, read without importing it.

`dtf ci --analyze` compares these hints with the test's declared `dtf_requires`: a test that
calls `torch.cuda` but declares no GPU lands on a CPU worker and fails or skips there.

Hints, each with the line that gave it:
- GPU APIs: `torch.cuda.*`, `.cuda()`, a `"cuda"`/`"cuda:N"` device, `cupy`, `numba.cuda`,
  `pycuda`, `pynvml`, JAX or TensorFlow asking for a GPU: one NVIDIA GPU.
- ROCm: `torch.version.hip`, `"rocm"`/`"hip"` devices, `hip`/`amdsmi` modules: one AMD GPU.
- Apple's Metal (MPS): `torch.backends.mps`, an `"mps"` device: platform darwin.
- markers named like `gpu`, `cuda`, `requires_gpu`: one GPU.
- allocations whose size is a literal (`np.zeros((N, M))`, `torch.empty(N)`, `bytearray(N)`,
  `b"x" * N`, `[0] * N`) of 1 GiB or more: that much memory, rounded up to whole GB.

A hint in a module's top level (an import of `cupy`, a `pytestmark`) applies to each of its
tests. Pure: source text in, hints out.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from events.catalogue import Requirements

Status = Literal["missing", "ok", "declared"]
GIB = 2**30
_MAX_REASONS = 3
# Below this an allocation says nothing: every worker has a gigabyte to spare.
MEMORY_HINT_BYTES = GIB

_NVIDIA_MODULES = ("cupy", "numba.cuda", "pycuda", "pynvml", "cuda", "tensorrt", "nvidia")
_AMD_MODULES = ("hip", "amdsmi", "pyrsmi")
_GPU_MARKERS = {"gpu", "cuda", "requires_gpu", "needs_gpu", "gpu_only", "cuda_only", "rocm"}
_DEVICE = re.compile(r"^(cuda|rocm|hip|mps)(:\d+)?$", re.IGNORECASE)
_ALLOCATORS = {"zeros", "ones", "empty", "full", "rand", "randn", "random", "standard_normal"}
# Bytes per element when the call names no dtype: numpy's float64, torch's float32.
_DEFAULT_ITEMSIZE = {"np": 8, "numpy": 8, "torch": 4, "cupy": 8, "cp": 8}
_DTYPE_SIZES = {
    "float64": 8, "double": 8, "int64": 8, "complex64": 8, "complex128": 16,
    "float32": 4, "float": 4, "int32": 4, "float16": 2, "half": 2, "bfloat16": 2,
    "int16": 2, "int8": 1, "uint8": 1, "bool": 1,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Hint:
    """One reason to think a test needs some hardware."""

    line: int
    why: str  # e.g. "torch.cuda.is_available()"
    gpus: int = 0
    gpu_vendor: str = ""
    platform: str = ""
    memory_gb: float = 0.0


@dataclass
class FileHints:
    """A test file's hints: for the whole module, and per test function (by qualified name,
    `TestClass.test_name` or `test_name`)."""

    module: list[Hint] = field(default_factory=list)
    tests: dict[str, list[Hint]] = field(default_factory=dict)

    def of(self, qualname: str) -> list[Hint]:
        """The hints of one test: its own, its classes', and the module's."""
        found = list(self.module)
        parts = qualname.split(".")
        for depth in range(1, len(parts) + 1):
            found += self.tests.get(".".join(parts[:depth]), [])
        return found


def analyse(source: str) -> FileHints:
    """The hints in one file's source; a file that does not parse gives none (pytest's
    collection reports it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return FileHints()
    hints = FileHints()
    _visit_body(tree.body, "", hints)
    return hints


def suggested(hints: list[Hint]) -> Requirements:
    """The requirements the hints add up to: the most GPUs and memory any one asks for."""
    vendor = next((h.gpu_vendor for h in hints if h.gpu_vendor == "amd"), "")
    vendor = vendor or next((h.gpu_vendor for h in hints if h.gpu_vendor), "")
    return Requirements(
        platform=next((h.platform for h in hints if h.platform), ""),
        gpus=max((h.gpus for h in hints), default=0),
        gpu_vendor=vendor,
        memory_gb=max((h.memory_gb for h in hints), default=0.0),
    )


def missing(declared: Requirements, wanted: Requirements) -> Requirements:
    """What `wanted` asks for that `declared` does not cover (empty: nothing)."""
    return Requirements(
        platform=wanted.platform if wanted.platform != declared.platform else "",
        gpus=wanted.gpus if wanted.gpus > declared.gpus else 0,
        # A declared GPU of any vendor is taken as the author's choice.
        gpu_vendor=wanted.gpu_vendor if not declared.gpus and not declared.gpu_vendor else "",
        memory_gb=wanted.memory_gb if wanted.memory_gb > declared.memory_gb else 0.0,
    )


def _visit_body(body: list[ast.stmt], prefix: str, hints: FileHints) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            name = prefix + node.name
            hints.tests[name] = _decorator_hints(node)
            _visit_body(node.body, name + ".", hints)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("test"):
                found = _decorator_hints(node)
                for child in node.body:
                    found += _hints_in(child)
                hints.tests[prefix + node.name] = found
        elif not prefix:
            hints.module += _hints_in(node)


def _decorator_hints(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> list[Hint]:
    found = []
    for deco in node.decorator_list:
        found += _marker_hints(deco)
        found += _hints_in(deco)  # skipif(not torch.cuda.is_available()) and the like
    return found


def _marker_hints(node: ast.expr) -> list[Hint]:
    """`@pytest.mark.gpu`, `@pytest.mark.cuda(...)`: the marker's name says it."""
    target = node.func if isinstance(node, ast.Call) else node
    name = _dotted(target)
    if name.startswith(("pytest.mark.", "mark.")) and name.rsplit(".", 1)[1] in _GPU_MARKERS:
        vendor = "amd" if name.endswith("rocm") else ""
        return [Hint(node.lineno, f"@{name}", gpus=1, gpu_vendor=vendor)]
    return []


def _hints_in(tree: ast.AST) -> list[Hint]:
    found: list[Hint] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [h for alias in node.names if (h := _module_hint(alias.name, node.lineno))]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found += [h for name in names if (h := _module_hint(name, node.lineno))][:1]
        elif isinstance(node, ast.Attribute):
            found += _attribute_hint(node)
        elif isinstance(node, ast.Call):
            found += _call_hints(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            found += _repeat_hint(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += _device_hint(node.value, node.lineno)
    return _dedup(found)


def _module_hint(module: str, line: int) -> Hint | None:
    if any(module == m or module.startswith(m + ".") for m in _NVIDIA_MODULES):
        return Hint(line, f"import {module}", gpus=1, gpu_vendor="nvidia")
    if any(module == m or module.startswith(m + ".") for m in _AMD_MODULES):
        return Hint(line, f"import {module}", gpus=1, gpu_vendor="amd")
    return None


def _attribute_hint(node: ast.Attribute) -> list[Hint]:
    name = _dotted(node)
    if name in ("torch.cuda", "tf.test.is_gpu_available"):
        return [Hint(node.lineno, name, gpus=1)]
    if name == "torch.version.hip":
        return [Hint(node.lineno, name, gpus=1, gpu_vendor="amd")]
    if name == "torch.backends.mps":
        return [Hint(node.lineno, name, platform="darwin")]
    return []


def _call_hints(node: ast.Call) -> list[Hint]:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "cuda" and not _dotted(func.value):
        return [Hint(node.lineno, ".cuda()", gpus=1)]
    if isinstance(func, ast.Attribute) and func.attr == "cuda":
        return [Hint(node.lineno, f"{_dotted(func)}()", gpus=1)]
    name = _dotted(func)
    if name in ("jax.devices", "tf.config.list_physical_devices") and any(
        isinstance(a, ast.Constant) and str(a.value).lower() == "gpu" for a in node.args
    ):
        return [Hint(node.lineno, f"{name}({node.args[0].value!r})", gpus=1)]  # type: ignore[attr-defined]
    size = _allocation_bytes(node, name)
    if size >= MEMORY_HINT_BYTES:
        return [_memory_hint(node.lineno, f"{name}(...)", size)]
    return []


def _device_hint(text: str, line: int) -> list[Hint]:
    if not _DEVICE.match(text):
        return []
    device = text.lower().split(":", 1)[0]
    if device == "cuda":
        return [Hint(line, f"device {text!r}", gpus=1)]
    if device in ("rocm", "hip"):
        return [Hint(line, f"device {text!r}", gpus=1, gpu_vendor="amd")]
    if device == "mps":
        return [Hint(line, f"device {text!r}", platform="darwin")]
    return []


def _allocation_bytes(node: ast.Call, name: str) -> int:
    """Bytes of `np.zeros((N, M), dtype=...)`-style calls and `bytearray(N)`, when literal."""
    if name == "bytearray" and node.args:
        return _int(node.args[0])
    module, _, func = name.rpartition(".")
    root = module.split(".", 1)[0]
    if func not in _ALLOCATORS or root not in _DEFAULT_ITEMSIZE:
        return 0
    shape = node.args[0] if node.args else _keyword(node, "size") or _keyword(node, "shape")
    if func in ("rand", "randn") and len(node.args) > 1:
        dims = [_int(a) for a in node.args]
    else:
        dims = _shape(shape)
    if not dims or min(dims) <= 0:
        return 0
    itemsize = _DEFAULT_ITEMSIZE[root]
    dtype = _keyword(node, "dtype")
    if dtype is not None:
        itemsize = _DTYPE_SIZES.get(_dotted(dtype).rsplit(".", 1)[-1] or _str(dtype), itemsize)
    return math.prod(dims) * itemsize


def _repeat_hint(node: ast.BinOp) -> list[Hint]:
    """`b"x" * N` and `[0] * N`: about N bytes (a list: 8 per slot)."""
    for seq, count in ((node.left, node.right), (node.right, node.left)):
        if isinstance(seq, ast.Constant) and isinstance(seq.value, bytes | str):
            size = len(seq.value) * _int(count)
        elif isinstance(seq, ast.List):
            size = 8 * len(seq.elts) * _int(count)
        else:
            continue
        if size >= MEMORY_HINT_BYTES:
            return [_memory_hint(node.lineno, "a repeated literal", size)]
    return []


def _memory_hint(line: int, what: str, size: int) -> Hint:
    gb = size / GIB
    return Hint(line, f"{what} of {gb:.1f} GiB", memory_gb=float(math.ceil(gb)))


def _shape(node: ast.expr | None) -> list[int]:
    if isinstance(node, ast.Tuple | ast.List):
        return [_int(e) for e in node.elts]
    return [_int(node)] if node is not None else []


def _int(node: ast.expr) -> int:
    """A literal integer expression's value (`2**30`, `8 * 1024 * 1024`), else 0."""
    try:
        value = _evaluate(node)
    except (ArithmeticError, ValueError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _evaluate(node: ast.expr) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if not isinstance(left, int) or not isinstance(right, int):
            return None
        if isinstance(node.op, ast.Pow) and 0 <= right <= 64:
            return left**right
        if isinstance(node.op, ast.LShift) and 0 <= right <= 64:
            return left << right
        ops = {ast.Mult: int.__mul__, ast.Add: int.__add__, ast.Sub: int.__sub__}
        return ops[type(node.op)](left, right) if type(node.op) in ops else None
    return None


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _str(node: ast.expr) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def _dotted(node: ast.expr) -> str:
    """`torch.cuda.is_available` for that attribute chain; "" for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def _dedup(hints: list[Hint]) -> list[Hint]:
    """One hint per line and kind: `torch.cuda.is_available()` walks as two attributes."""
    seen: set[tuple[int, int, str, str, float]] = set()
    kept = []
    for h in hints:
        key = (h.line, h.gpus, h.gpu_vendor, h.platform, h.memory_gb)
        if key not in seen:
            seen.add(key)
            kept.append(h)
    return kept


@dataclass(frozen=True, slots=True)
class Finding:
    """One test function (all its parameters) with requirements declared or suggested."""

    test: str  # `path::Class::test_name`
    items: int
    declared: Requirements
    wanted: Requirements
    hints: tuple[Hint, ...]

    @property
    def lacking(self) -> Requirements:
        return missing(self.declared, self.wanted)

    @property
    def status(self) -> Status:
        if self.lacking != Requirements():
            return "missing"
        return "ok" if self.hints else "declared"

    def reasons(self) -> str:
        shown = [f"{h.why} (line {h.line})" for h in self.hints[:_MAX_REASONS]]
        more = len(self.hints) - _MAX_REASONS
        return "; ".join(shown) + (f"; {more} more" if more > 0 else "")


def function_id(nodeid: str) -> str:
    """`a.py::T::test_x[1-2]` -> `a.py::T::test_x`: a parametrized test's items as one."""
    head, sep, _ = nodeid.partition("[")
    return head if sep else nodeid


def qualname(test: str) -> str:
    """`a.py::T::test_x` -> `T.test_x`, as FileHints names it."""
    return ".".join(test.split("::")[1:])
