"""Compile CUDA C to PTX with NVRTC, without a GPU (no CuPy needed): what CuPy would compile on a device.

NVRTC is a plain C library (the ``nvidia-cuda-nvrtc`` wheel of the dev extras, or a CUDA toolkit); this
calls it through ctypes. Used by tests/test_cuda_c.py to compile every kernels/*/*.cu file in CI.
"""
import ctypes
import glob
import os
import sys


def find_library():
    """The path of libnvrtc, or None."""
    candidates = []
    for entry in sys.path:
        candidates += glob.glob(os.path.join(entry, "nvidia", "**", "libnvrtc.so*"), recursive=True)
    candidates += glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*")
    candidates = [c for c in candidates if "builtins" not in os.path.basename(c)]
    return sorted(candidates)[0] if candidates else None


def _check(library, status, program=None):
    if status != 0:
        log = ""
        if program is not None:
            size = ctypes.c_size_t()
            library.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            buffer = ctypes.create_string_buffer(size.value)
            library.nvrtcGetProgramLog(program, buffer)
            log = buffer.value.decode()
        library.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise RuntimeError(f"NVRTC: {library.nvrtcGetErrorString(status).decode()}\n{log}")


def compile_to_ptx(code, name_expressions, arch="compute_90", options=("-std=c++17", "-ftz=true")):
    """(ptx, {name expression: lowered (mangled) name}) for the CUDA C ``code``, compiled with CuPy's options
    (CuPy adds -ftz=true to every RawModule: float32 denormals flush to zero on the GPU)."""
    library = ctypes.CDLL(find_library())
    program = ctypes.c_void_p()
    _check(library, library.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"kernel.cu", 0, None, None))
    try:
        for name in name_expressions:
            _check(library, library.nvrtcAddNameExpression(program, name.encode()))
        flags = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in options]
        _check(library, library.nvrtcCompileProgram(program, len(flags), (ctypes.c_char_p * len(flags))(*flags)),
               program)
        size = ctypes.c_size_t()
        _check(library, library.nvrtcGetPTXSize(program, ctypes.byref(size)))
        buffer = ctypes.create_string_buffer(size.value)
        _check(library, library.nvrtcGetPTX(program, buffer))
        lowered = {}
        for name in name_expressions:
            pointer = ctypes.c_char_p()
            _check(library, library.nvrtcGetLoweredName(program, name.encode(), ctypes.byref(pointer)))
            lowered[name] = pointer.value.decode()
        return buffer.value.decode(), lowered
    finally:
        library.nvrtcDestroyProgram(ctypes.byref(program))


def entry_bodies(ptx):
    """{mangled kernel name: its PTX text}: each ``.entry`` up to the next one."""
    bodies, name = {}, None
    for line in ptx.splitlines():
        stripped = line.strip()
        if ".entry " in stripped and stripped.split(".entry", 1)[0].strip() in ("", ".visible", ".weak"):
            name = stripped.split(".entry", 1)[1].strip().split("(")[0].strip()
            bodies[name] = []
        if name is not None:
            bodies[name].append(line)
    return {k: "\n".join(v) for k, v in bodies.items()}


PTX_PARAM_BYTES = {"u32": 4, "s32": 4, "f32": 4, "b32": 4, "u64": 8, "s64": 8, "f64": 8, "b64": 8}


def entry_parameter_bytes(body):
    """The byte width of each parameter of one ``.entry`` (pointers are 8 bytes), in order."""
    widths = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith(".param"):
            widths.append(PTX_PARAM_BYTES[line.split()[1].lstrip(".")])
        elif line.startswith(")"):
            break
    return widths
