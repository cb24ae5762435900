"""The on-disk cache of generated derivatives, in ``__pycache__/`` beside the primal's module.

Where Python keeps bytecode (and numba its cache): ``__pycache__/`` beside the
source, or under ``sys.pycache_prefix`` (``PYTHONPYCACHEPREFIX``) when that is
set; ``S2S_CACHE_DIR`` moves it (``S2S_CACHE_DIR=~/.cache/s2s``, say), mirroring
the source's folder below it as the prefix does. Nothing is written among the
user's sources. One file per derivative (function and options, argument
shapes included when `s2s.api` specializes on them), holding the generated
module under a first line that records its key. The key is a sha256 of
everything the text depends on:

- the primal's source, the sources of the user helpers it calls and the
  literal constants they read (`provenance.primal_digest`), and what every
  global name they use is bound to (``np`` -> numpy, ``helper`` -> a user
  function, ...);
- the primal's file name (it is written in the header);
- the s2s version *and* a digest of s2s's own source files, so an edited rule
  or engine never serves an old derivative, even before a version bump;
- every option given to `derive.reverse_module`: wrt, returns, name, target,
  known scalars and shapes, has_aux, ...

A file whose key differs is regenerated and replaced, silently. A file that
cannot be read or parsed, or a folder that cannot be written, only costs a
`CacheWarning`: the derivative is generated as if there were no cache.
Writes are atomic (temporary file, then ``os.replace``). ``S2S_CACHE=0``
turns the cache off. `STATS` counts what happened in this process.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import warnings

from . import __version__, derive, provenance
from .source import FunctionSource

CACHE_DIR = "__pycache__"
STATS = {"hits": 0, "generated": 0, "written": 0, "fallbacks": 0}
_META = re.compile(r"# s2s-cache key=(?P<key>[0-9a-f]{64}) text=(?P<text>[0-9a-f]{64}) "
                   r"entry=(?P<entry>\w+) injected=(?P<injected>[\w,]*)")


class CacheWarning(UserWarning):
    """The cache could not be used; the derivative was generated instead."""


def enabled() -> bool:
    """False when the environment sets ``S2S_CACHE`` to 0 (or false, no, off)."""
    return os.environ.get("S2S_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def reverse_module(src: FunctionSource, wrt, **options) -> derive.Generated:
    """`derive.reverse_module` (same arguments), served from the cache when an up-to-date copy is there."""
    if options.get("dump_after"):
        return derive.reverse_module(src, wrt, **options)
    deps = provenance.bind_late(src)
    digest = provenance.primal_digest(src, deps)
    key_options = {"wrt": list(wrt), **options,
                   "known_scalars": sorted(options.get("known_scalars", ()))}
    key_options.setdefault("returns", "grad")
    path = cache_path(src, key_options) if enabled() and not _reads_objects(deps) else None
    key = cache_key(src, deps, digest, key_options) if path else None
    if path:
        cached = _read(path, key, provenance.constants(deps))
        if cached is not None:
            STATS["hits"] += 1
            return cached
    gen = derive.reverse_module(provenance.stamped(src, digest), wrt, **options)
    STATS["generated"] += 1
    if path:
        _write(path, key, gen)
    return gen


def _reads_objects(deps) -> bool:
    """Do the functions read attributes of the user's objects (``self.W``)? Their values are
    not in the key: such derivatives are not cached on disk."""
    return any(b.kind == "object" for fs in deps for b in fs.scope.values())


def cache_folder(filename: str) -> str:
    """Where derivatives of functions in ``filename`` are cached (see the module docstring)."""
    source_folder = os.path.dirname(os.path.abspath(filename))
    prefix = os.environ.get("S2S_CACHE_DIR") or sys.pycache_prefix
    if prefix:
        return os.path.join(os.path.abspath(os.path.expanduser(prefix)),
                            os.path.splitdrive(source_folder)[1].lstrip(os.sep))
    return os.path.join(source_folder, CACHE_DIR)


def cache_path(src: FunctionSource, options: dict) -> str | None:
    """``<cache folder>/<module>.s2s.<function>.<returns>.<options digest>.py``, or None without a file."""
    if not src.filename or not os.path.isfile(src.filename):
        return None
    folder = cache_folder(src.filename)
    stem = os.path.splitext(os.path.basename(src.filename))[0]
    qualname = getattr(src.live, "__qualname__", None) or src.name
    qualname = re.sub(r"[^A-Za-z0-9_.]", "_", qualname)
    tag = hashlib.sha256(json.dumps(options, sort_keys=True, default=repr).encode()).hexdigest()[:10]
    return os.path.join(folder, f"{stem}.s2s.{qualname}.{options['returns']}.{tag}.py")


def cache_key(src: FunctionSource, deps, digest: str, options: dict) -> str:
    h = hashlib.sha256()
    h.update(f"s2s {__version__} {tool_fingerprint()}\0".encode())
    h.update(f"file {os.path.abspath(src.filename)}\0digest {digest}\0".encode())
    for fs in deps:
        # its line too: the derivative's ``# line N`` notes (and errors located by them) name it
        h.update(f"function {fs.filename}:{fs.name}:{fs.node.lineno}\0{provenance.function_text(fs)}\0".encode())
        for name in provenance.names_used(fs):
            binding = fs.scope.get(name)
            if binding is None:
                continue
            value = provenance.value_text(binding.value) if binding.kind == "constant" else ""
            h.update(f"bind {name}={binding.kind}:{binding.qualname}:{value}\0".encode())
    h.update(json.dumps(options, sort_keys=True, default=repr).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def tool_fingerprint() -> str:
    """A digest of s2s's own ``.py`` files (rules and engine)."""
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != CACHE_DIR)
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as fh:
                    h.update(os.path.relpath(path, root).encode() + b"\0" + fh.read() + b"\0")
    return h.hexdigest()


def _read(path: str, key: str, constants: dict) -> derive.Generated | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None  # not cached yet (a write failure, if any, is reported by `_write`)
    except (OSError, UnicodeDecodeError) as exc:
        return _fallback(f"cannot read s2s cache file {path} ({exc}); generating the derivative")
    first, _, text = data.partition("\n")
    meta = _META.fullmatch(first)
    if meta is None:
        return _fallback(f"ignoring corrupt s2s cache file {path}; generating the derivative")
    if meta["key"] != key:
        return None  # stale: the primal, a helper, s2s or an option changed
    if hashlib.sha256(text.encode()).hexdigest() != meta["text"]:
        return _fallback(f"ignoring corrupt s2s cache file {path}; generating the derivative")
    names = [n for n in meta["injected"].split(",") if n]
    if any(n not in constants for n in names):
        return None
    return derive.Generated(text, meta["entry"], {n: constants[n] for n in names})


def _write(path: str, key: str, gen: derive.Generated) -> None:
    text_digest = hashlib.sha256(gen.text.encode()).hexdigest()
    injected = ",".join(sorted(gen.injected))
    first = f"# s2s-cache key={key} text={text_digest} entry={gen.entry} injected={injected}"
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        write_text_atomic(path, first + "\n" + gen.text, durable=False)  # (its digest is checked)
    except OSError as exc:
        _fallback(f"cannot write s2s cache file {path} ({exc}); "
                  "the derivative will be generated again next time")
        return
    STATS["written"] += 1


def _fallback(message: str) -> None:
    STATS["fallbacks"] += 1
    warnings.warn(message, CacheWarning, stacklevel=caller_level())
    return None


def caller_level() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside s2s."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def write_text_atomic(path: str, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Readers see the old file or the new one, never a half-written one; on any
    error the old file is left as it was. An existing file keeps its permissions.
    ``durable=False`` skips flushing the file to disk first (an fsync costs milliseconds,
    more on a busy disk): for files s2s checks when it reads them and writes again when
    they are wrong (the cache's digest, the size of a generated module's file), where a
    file cut short by a crash costs only its regeneration.
    """
    path = os.path.abspath(path)
    folder, base = os.path.split(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
