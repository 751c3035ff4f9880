"""What a joblib file needs importing, read from its pickle opcodes without unpickling it.

A passthrough bundle ships the joblib file and unpickles it at run time, so
every module the pickle names must be frozen into the app, or the user meets
``ModuleNotFoundError``. PyInstaller cannot see those imports (they are data,
not code), so they are read here from the opcodes and handed to it as hidden
imports.

A joblib file is not a plain pickle stream: each numpy array is pickled as a
``joblib.numpy_pickle.NumpyArrayWrapper`` and its raw bytes are written right
after that object's ``BUILD`` opcode (``NumpyArrayWrapper.write_array``): one
padding-length byte and that many ``0xff`` bytes (``numpy_array_alignment_bytes``,
joblib >= 1.2), then ``prod(shape) * dtype.itemsize`` bytes; or, for an object
dtype, a nested pickle stream (protocol 5) with no padding. ``pickletools.genops``
alone stops at the first array. This module runs a small symbolic pickle
machine over the opcodes: it rebuilds literals, tuples, lists and dicts, keeps
everything else as an inert ``_Obj`` (class reference, arguments, state), and
after each ``BUILD`` of a wrapper computes the array's byte length from the
wrapper's state and skips those bytes (parsing a nested stream recursively).
The only thing it ever constructs is a ``numpy.dtype``, from literal arguments,
to learn the item size. The whole stream must be consumed exactly, up to a
final ``STOP`` at end of file, or the file is refused.

Compressed joblib files (zlib, gzip, bz2, lzma, xz) are detected by their magic
bytes, as joblib does, and decompressed on the fly with the standard library.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import copyreg
import gzip
import importlib.util
import io
import lzma
import math
import pickletools
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from bundler.errors import ArtifactError

#: The class joblib pickles in place of each numpy array.
ARRAY_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
#: joblib < 0.10 wrote arrays into separate files next to the pickle: not one shippable file.
_OLD_WRAPPERS = {
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
    ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"),
    ("joblib.numpy_pickle", "NDArrayWrapper"),
    ("joblib.numpy_pickle", "ZNDArrayWrapper"),
}
#: Modules that are never hidden imports: built into every interpreter.
_BUILTIN_MODULES = frozenset({"builtins", "__builtin__"})

#: Magic bytes of the compressions joblib writes (joblib.compressor), longest first.
_ZLIB_PREFIX = b"\x78"
_GZIP_PREFIX = b"\x1f\x8b"
_BZ2_PREFIX = b"BZ"
_XZ_PREFIX = b"\xfd\x37\x7a\x58\x5a"
_LZMA_PREFIX = b"\x5d\x00"
_LZ4_PREFIX = b"\x04\x22\x4d\x18"
_OLD_JOBLIB_PREFIX = b"ZF"

_CHUNK = 1 << 20


class PickleReadError(ArtifactError):
    """A joblib file whose opcodes cannot be read (or skipped) soundly."""


# -- public API ---------------------------------------------------------------------------


def pickle_globals(path: Path) -> set[tuple[str, str]]:
    """Every ``(module, name)`` global the joblib file at ``path`` references.

    Names are as ``pickle.Unpickler.find_class`` imports them (protocol < 3
    pickles are mapped from their Python 2 names, as the unpickler does).
    Raises PickleReadError for a file this reader cannot follow soundly
    (lz4 compression, joblib < 0.10 formats, persistent ids, out-of-band
    buffers, truncation or trailing data).
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            stream = _open_stream(raw, path)
            machine = _Machine(stream, str(path))
            machine.run()
            rest = stream.read(1)
            if rest:
                raise PickleReadError(
                    f"{path}: unexpected data after the pickle's STOP at byte {stream.tell() - 1}; "
                    "not a joblib file this reader understands"
                )
            return machine.found
    except OSError as exc:
        raise PickleReadError(f"{path}: cannot be read ({exc})") from None
    except (EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise PickleReadError(f"{path}: not a readable joblib/pickle file ({exc})") from None


def hidden_imports(found: Iterable[tuple[str, str]]) -> list[str]:
    """The modules to freeze for ``found``: each module and its parent packages, sorted.

    A class pickled from ``__main__`` (defined in the training script) cannot be
    imported by any other program, so it is refused with the fix.
    """
    modules: set[str] = set()
    for module, name in found:
        if module == "__main__":
            raise PickleReadError(
                f"the model references __main__.{name}, defined in the script that trained it; "
                "no other program can import it. Move it into an installable module, "
                "re-train or re-export, and dump the model again"
            )
        if module in _BUILTIN_MODULES:
            continue
        parts = module.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(modules)


def check_importable(modules: Iterable[str]) -> None:
    """Refuse modules the build environment cannot find: PyInstaller could not freeze them."""
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        raise PickleReadError(
            "the model's pickle needs module(s) that are not installed in the build "
            f"environment: {', '.join(missing)}; install the package(s) that provide them"
        )


def distributions(modules: Iterable[str]) -> dict[str, str]:
    """Installed distributions (name -> version) providing ``modules``; the stdlib is left out.

    A module that belongs to no installed distribution (a loose file on the path)
    is listed under its own name with version ``"unpackaged"``.
    """
    owners = metadata.packages_distributions()
    out: dict[str, str] = {}
    for module in modules:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            continue
        names = owners.get(top)
        if not names:
            out[top] = "unpackaged"
            continue
        for name in names:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = "unknown"
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


# -- compression ----------------------------------------------------------------------------


def _open_stream(raw: BinaryIO, path: Path) -> _Stream:
    """The decompressed byte stream, chosen by magic bytes as ``joblib`` does."""
    head = raw.read(8)
    raw.seek(0)
    if head.startswith(_OLD_JOBLIB_PREFIX):
        raise PickleReadError(
            f"{path}: written by joblib < 0.10 (the 'ZF' format); load it and dump it again "
            "with a current joblib"
        )
    if head.startswith(_LZ4_PREFIX):
        raise PickleReadError(
            f"{path}: lz4-compressed, which the standard library cannot read; dump it again "
            "with compress=('zlib', 3) (or another of zlib, gzip, bz2, lzma, xz) or uncompressed"
        )
    # The decompressing readers wrap ``raw`` and hold nothing else: closing ``raw`` is enough.
    reader: BinaryIO
    if head.startswith(_XZ_PREFIX):
        reader = lzma.LZMAFile(raw, format=lzma.FORMAT_XZ)  # type: ignore[assignment]  # noqa: SIM115
    elif head.startswith(_LZMA_PREFIX):
        reader = lzma.LZMAFile(raw, format=lzma.FORMAT_ALONE)  # type: ignore[assignment]  # noqa: SIM115
    elif head.startswith(_GZIP_PREFIX):
        reader = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    elif head.startswith(_BZ2_PREFIX):
        reader = bz2.BZ2File(raw)  # type: ignore[assignment]
    elif head.startswith(_ZLIB_PREFIX):
        reader = io.BufferedReader(_ChunkReader(_zlib_chunks(raw, path)), _CHUNK)
    else:
        reader = raw
    return _Stream(reader)


def _zlib_chunks(raw: BinaryIO, path: Path) -> Iterator[bytes]:
    """Decompress a zlib stream (joblib's ``BinaryZlibFile``) in bounded pieces."""
    dec = zlib.decompressobj(zlib.MAX_WBITS)
    fresh = True
    while True:
        block = raw.read(_CHUNK)
        if not block:
            break
        while block:
            fresh = False
            out = dec.decompress(block, _CHUNK)
            if out:
                yield out
            if dec.eof:  # a further stream may follow, as several zlib members
                block, dec, fresh = dec.unused_data, zlib.decompressobj(zlib.MAX_WBITS), True
            else:
                block = dec.unconsumed_tail
                while not block and len(out) == _CHUNK:  # output still pending
                    out = dec.decompress(b"", _CHUNK)
                    if out:
                        yield out
    if not fresh:
        tail = dec.flush()
        if tail:
            yield tail
        if not dec.eof:
            raise PickleReadError(f"{path}: the zlib stream is truncated")


class _ChunkReader(io.RawIOBase):
    """A raw readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Stream:
    """What ``pickletools.genops`` reads from: ``read``/``readline``, plus a byte position."""

    def __init__(self, reader: BinaryIO) -> None:
        self._reader = reader
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        data = self._reader.read(n)
        self._pos += len(data)
        return data

    def readline(self) -> bytes:
        data = self._reader.readline()
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def skip(self, n: int, what: str) -> None:
        left = n
        while left:
            got = len(self.read(min(left, _CHUNK)))
            if not got:
                raise EOFError(f"file ends inside {what} ({n} bytes expected)")
            left -= got


# -- the symbolic pickle machine -------------------------------------------------------------


class _Mark:
    """The MARK sentinel on the machine's stack."""


_MARK = _Mark()


@dataclass(eq=False)
class _Global:
    module: str
    name: str


@dataclass(eq=False)
class _Obj:
    """An object the machine does not build: how it would be made, and its state."""

    cls: Any
    args: Any = ()
    state: Any = None
    items: list[Any] = field(default_factory=list)

    def class_ref(self) -> tuple[str, str] | None:
        """The class this object is an instance of, when the opcodes say so plainly."""
        cls = self.cls
        # protocol 0/1: copyreg._reconstructor(cls, base, state)
        if (
            isinstance(cls, _Global)
            and (cls.module, cls.name) == ("copyreg", "_reconstructor")
            and isinstance(self.args, tuple)
            and self.args
        ):
            cls = self.args[0]
        return (cls.module, cls.name) if isinstance(cls, _Global) else None


#: Opcodes that only push their decoded argument.
_LITERALS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT",
}  # fmt: skip
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_IGNORED = {"PROTO", "FRAME"}


class _Machine:
    """Run a pickle's opcodes symbolically, collecting globals and skipping joblib's arrays."""

    def __init__(self, stream: _Stream, where: str, found: set[tuple[str, str]] | None = None):
        self.stream = stream
        self.where = where
        self.found: set[tuple[str, str]] = set() if found is None else found
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0

    # -- helpers ----------------------------------------------------------
    def _fail(self, pos: int | None, message: str) -> PickleReadError:
        at = f" at byte {pos}" if pos is not None else ""
        return PickleReadError(f"{self.where}: {message}{at}")

    def _pop(self) -> Any:
        if not self.stack:
            raise ValueError("stack underflow")
        return self.stack.pop()

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise ValueError("no MARK on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _global(self, module: str, name: str) -> _Global:
        if self.proto < 3:  # as pickle.Unpickler.find_class with fix_imports
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        self.found.add((module, name))
        return _Global(module, name)

    # -- the loop -----------------------------------------------------------
    def run(self) -> None:
        """Consume opcodes up to and including STOP."""
        for opcode, arg, pos in pickletools.genops(self.stream):
            name = opcode.name
            if name == "STOP":
                return
            try:
                self._step(name, arg, pos)
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise self._fail(pos, f"cannot follow opcode {name} ({exc})") from None
        raise self._fail(None, "the pickle has no STOP opcode")

    def _step(self, name: str, arg: Any, pos: int | None) -> None:
        stack = self.stack
        if name in _LITERALS:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name in _IGNORED:
            if name == "PROTO":
                self.proto = int(arg)
        elif name == "BYTEARRAY8":
            stack.append(bytearray(arg))
        elif name == "MARK":
            self.metastack.append(stack)
            self.stack = []
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        # memo
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo[int(arg)])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        # containers
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_SET":
            stack.append(_Obj(_Global("builtins", "set")))
        elif name == "LIST":
            self._push_after_mark(list)
        elif name == "TUPLE":
            self._push_after_mark(tuple)
        elif name == "FROZENSET":
            self._push_after_mark(lambda items: _Obj(_Global("builtins", "frozenset"), (items,)))
        elif name == "DICT":
            items = self._pop_mark()
            d: dict[Any, Any] = {}
            self._set_items(d, items)
            self.stack.append(d)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(stack) < n:
                raise ValueError("stack underflow")
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "APPEND":
            value = self._pop()
            self._extend(self.stack[-1], [value])
        elif name == "APPENDS":
            items = self._pop_mark()
            self._extend(self.stack[-1], items)
        elif name == "SETITEM":
            value, key = self._pop(), self._pop()
            self._set_items(self.stack[-1], [key, value])
        elif name == "SETITEMS":
            items = self._pop_mark()
            self._set_items(self.stack[-1], items)
        elif name == "ADDITEMS":
            items = self._pop_mark()
            self._extend(self.stack[-1], items)
        # globals and objects
        elif name in ("GLOBAL", "INST"):
            module, _, qualname = str(arg).partition(" ")
            ref = self._global(module, qualname)
            if name == "GLOBAL":
                stack.append(ref)
            else:
                self.stack.append(_Obj(ref, tuple(self._pop_mark())))
        elif name == "STACK_GLOBAL":
            qualname, module = self._pop(), self._pop()
            if not (isinstance(module, str) and isinstance(qualname, str)):
                raise ValueError("STACK_GLOBAL needs two strings")
            self.stack.append(self._global(module, qualname))
        elif name in ("EXT1", "EXT2", "EXT4"):
            key = copyreg._inverted_registry.get(int(arg))  # type: ignore[attr-defined]
            if key is None:
                raise self._fail(pos, f"unregistered pickle extension code {arg}")
            self.stack.append(self._global(*key))
        elif name == "REDUCE":
            args, fn = self._pop(), self._pop()
            literal = _bytes_literal(fn, args)
            self.stack.append(_Obj(fn, args) if literal is None else literal)
        elif name == "NEWOBJ":
            args, cls = self._pop(), self._pop()
            self.stack.append(_Obj(cls, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, cls = self._pop(), self._pop(), self._pop()
            self.stack.append(_Obj(cls, args))
        elif name == "OBJ":
            items = self._pop_mark()
            if not items:
                raise ValueError("OBJ without a class")
            self.stack.append(_Obj(items[0], tuple(items[1:])))
        elif name == "BUILD":
            state = self._pop()
            target = self.stack[-1]
            if isinstance(target, _Obj):
                target.state = state
                self._after_build(target, pos)
        elif name in ("PERSID", "BINPERSID"):
            raise self._fail(
                pos, "the pickle uses persistent ids, which refer to objects outside the file"
            )
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            raise self._fail(pos, "the pickle uses out-of-band buffers (protocol 5)")
        else:
            raise self._fail(pos, f"opcode {name} is not supported")

    def _push_after_mark(self, make: Any) -> None:
        items = self._pop_mark()
        self.stack.append(make(items))

    @staticmethod
    def _extend(target: Any, items: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, _Obj):
            target.items.extend(items)

    @staticmethod
    def _set_items(target: Any, items: list[Any]) -> None:
        if len(items) % 2:
            raise ValueError("odd number of items for a dict")
        for k in range(0, len(items), 2):
            key, value = items[k], items[k + 1]
            if isinstance(target, dict):
                try:
                    target[key] = value
                except TypeError:  # an unhashable key the machine did not build
                    continue
            elif isinstance(target, _Obj):
                target.items.extend((key, value))

    # -- joblib arrays ------------------------------------------------------
    def _after_build(self, obj: _Obj, pos: int | None) -> None:
        ref = obj.class_ref()
        if ref in _OLD_WRAPPERS:
            raise self._fail(
                pos,
                "the file refers to arrays stored in separate files (joblib < 0.10's format); "
                "load it and dump it again with a current joblib",
            )
        if ref != ARRAY_WRAPPER:
            return
        state = obj.state
        if not isinstance(state, dict):
            raise self._fail(pos, "a NumpyArrayWrapper without its state")
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise self._fail(pos, f"a NumpyArrayWrapper with shape {shape!r}")
        dtype = _dtype(state.get("dtype"))
        if dtype.hasobject:
            # a nested pickle stream with its own stack and memo; its globals count too
            _Machine(self.stream, self.where, self.found).run()
        else:
            alignment = state.get("numpy_array_alignment_bytes")
            if alignment is not None:
                at = self.stream.tell()
                pad = self.stream.read(1)
                if len(pad) != 1:
                    raise EOFError("file ends before an array's padding byte")
                if not isinstance(alignment, int) or pad[0] > alignment:
                    raise self._fail(at, f"padding of {pad[0]} bytes for alignment {alignment}")
                fill = self.stream.read(pad[0])
                if fill != b"\xff" * pad[0]:
                    raise self._fail(at, "array padding is not 0xff bytes")
            count = math.prod(shape)
            self.stream.skip(count * dtype.itemsize, f"an array of shape {shape} ({dtype})")
        self.stack.pop()
        self.stack.append(_Obj(_Global("numpy", "ndarray")))  # the array now stands there


def _bytes_literal(fn: Any, args: Any) -> bytes | None:
    """Protocols 0-2 pickle bytes as ``_codecs.encode(text, "latin1")`` (or ``bytes()``):
    fold them back into the literal (dtype states hold bytes, e.g. datetime units)."""
    if not isinstance(fn, _Global):
        return None
    if (
        (fn.module, fn.name) == ("_codecs", "encode")
        and isinstance(args, tuple)
        and len(args) == 2
        and isinstance(args[0], str)
        and args[1] == "latin1"
    ):
        return args[0].encode("latin1")
    if (fn.module, fn.name) == ("builtins", "bytes") and args == ():
        return b""
    return None


def _dtype(value: Any) -> Any:
    """Rebuild a ``numpy.dtype`` from its symbolic reduce form (literal arguments only)."""
    import numpy as np

    if not isinstance(value, _Obj) or value.class_ref() != ("numpy", "dtype"):
        raise ValueError(f"a NumpyArrayWrapper whose dtype is {value!r}")
    args = value.args
    if not (isinstance(args, tuple) and args and isinstance(args[0], str)):
        raise ValueError(f"numpy.dtype arguments {args!r}")
    dtype = np.dtype(*args)
    state = value.state
    if state is not None:
        if not isinstance(state, tuple):
            raise ValueError(f"numpy.dtype state {state!r}")
        dtype.__setstate__(tuple(_dtype_state(item) for item in state))
    return dtype


def _dtype_state(item: Any) -> Any:
    """The literal parts of a dtype's state, with nested dtypes (structured fields) rebuilt."""
    if isinstance(item, _Obj):
        return _dtype(item)
    if isinstance(item, tuple):
        return tuple(_dtype_state(x) for x in item)
    if isinstance(item, dict):
        return {k: _dtype_state(v) for k, v in item.items()}
    if isinstance(item, (str, int, float, bytes, type(None))):
        return item
    raise ValueError(f"numpy.dtype state item {item!r}")
