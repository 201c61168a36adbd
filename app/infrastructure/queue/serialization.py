"""How job data, results and meta are turned into bytes and back: pickle or JSON, optionally signed.

rq stores `zlib(serializer.dumps((job_name, instance, args, kwargs)))` in the job hash; we
keep that format so rq's own tools read our jobs. With a signing key, every blob carries an
HMAC-SHA256 tag that is checked before anything is unpickled, and decompression is bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import pickle
import types
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from app.infrastructure.queue.errors import PayloadError, SerializationError, SignatureError

#: What our jobs store in the `instance` slot of rq's call tuple `(function, instance, args, kwargs)`.
#: A plain rq worker honours that slot: it calls `getattr(instance, function)` instead of importing
#: the function, and a str has no such attribute, so it fails the job without importing or running
#: anything of it. rq's readers (Job.fetch, `func_name`, `args`, `kwargs`, rq-dashboard) are
#: untouched; taskq's worker accepts exactly this marker (and None, from older producers).
TASKQ_ONLY = "taskq"
SIGNED_MAGIC = b"\x00TQS1"
_TAG_LEN = 32


class Serializer(Protocol):
    """rq's serializer port: what rq's `Job`, `Result` and our adapter call."""

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """The spec's serializer. Safe only with signing on, or when Redis is trusted (SECURITY.md)."""

    name = "pickle"

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> Any:
        return pickle.loads(data)


class JSONSerializer:
    """JSON, for teams that want no pickle: only JSON-safe params are accepted at enqueue."""

    name = "json"

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data)


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the padded key states computed once per key.

    The same tags as `hmac.digest(key, msg, "sha256")`, at half the cost: it runs on every
    enqueue, claim and result when signing is on.
    """

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def tag(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class SignedSerializer:
    """Wraps another serializer: `dumps` prepends an HMAC-SHA256 tag, `loads` checks it first.

    Verification accepts the current key and every old key (rotation); signing uses the current one.
    """

    def __init__(self, inner: Serializer, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self.inner = inner
        self.name = f"signed-{getattr(inner, 'name', 'custom')}"
        self._signer = _HmacSha256(key)
        self._verifiers = [self._signer, *(_HmacSha256(old) for old in old_keys)]

    def __repr__(self) -> str:
        return f"SignedSerializer({self.inner!r}, keys=<{len(self._verifiers)} redacted>)"

    def sign(self, payload: bytes) -> bytes:
        return SIGNED_MAGIC + self._signer.tag(payload) + payload

    def tag(self, payload: bytes) -> bytes:
        """The tag alone (for a job's data, whose tag has a field of its own: `taskq_sig`)."""
        return self._signer.tag(payload)

    def check(self, payload: bytes, tag: bytes) -> bytes:
        """`payload` if `tag` is its tag under a configured key.

        Raises:
            SignatureError: it is not.
        """
        if isinstance(tag, bytes) and len(tag) == _TAG_LEN:
            for verifier in self._verifiers:
                if hmac.compare_digest(tag, verifier.tag(payload)):
                    return payload
        raise SignatureError("?", "signature does not match any configured key; refused to load it")

    def verify(self, blob: bytes) -> bytes:
        """Return the payload inside `blob` if its tag matches a configured key.

        Raises:
            SignatureError: unsigned, truncated, or signed with an unknown key.
        """
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise SignatureError("?", "data is not bytes")
        blob = bytes(blob)
        if not blob.startswith(SIGNED_MAGIC) or len(blob) < len(SIGNED_MAGIC) + _TAG_LEN:
            raise SignatureError("?", "data is not signed (QUEUE_SIGNING_KEY is set); refused to load it")
        return self.check(
            blob[len(SIGNED_MAGIC) + _TAG_LEN :], blob[len(SIGNED_MAGIC) : len(SIGNED_MAGIC) + _TAG_LEN]
        )

    def dumps(self, obj: Any) -> bytes:
        return self.sign(self.inner.dumps(obj))

    def loads(self, data: bytes) -> Any:
        return self.inner.loads(self.verify(data))


def make_serializer(kind: str, key: bytes | None = None, old_keys: Sequence[bytes] = ()) -> Serializer:
    """The serializer for settings `QUEUE_SERIALIZER` / `QUEUE_SIGNING_KEY` / `QUEUE_SIGNING_KEYS_OLD`."""
    inner: Serializer = JSONSerializer() if kind == "json" else PickleSerializer()
    return SignedSerializer(inner, key, old_keys) if key else inner


def dumps_job_data(serializer: Serializer, call: Any) -> tuple[bytes, bytes]:
    """(payload, tag) for a job's data: with signing, the tag goes in a field of its own.

    In the payload it would cost 37 bytes, enough to push a small job's hash past Redis's compact
    encoding (64 bytes per value): about twice the memory per queued job. Without a key: (payload, b"").
    """
    if isinstance(serializer, SignedSerializer):
        payload = serializer.inner.dumps(call)
        return payload, serializer.tag(payload)
    return serializer.dumps(call), b""


def loads_job_data(serializer: Serializer, payload: bytes, tag: bytes | None) -> Any:
    """A job's data back (inflated already), checked against its tag when it has one."""
    if tag is not None and isinstance(serializer, SignedSerializer):
        return serializer.inner.loads(serializer.check(payload, tag))
    return serializer.loads(payload)  # no tag field: signed inside (or not signed at all)


def find_unserializable_key(serializer: Serializer, params: Mapping[str, Any]) -> str | None:
    """The first key of `params` whose value alone cannot be serialized (for error messages)."""
    for key, value in params.items():
        try:
            serializer.dumps(value)
        except Exception:
            return key
    return None


class _MainFinder(pickle.Pickler):
    """Pickles into nothing, noting every object whose class (or itself) lives in `__main__`."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
        self.found: list[str] = []

    def persistent_id(self, obj: Any) -> None:
        named = obj if isinstance(obj, type | types.FunctionType) else type(obj)
        if getattr(named, "__module__", None) == "__main__":
            self.found.append(f"__main__.{getattr(named, '__qualname__', '?')}")


def decode_problem(raw: bytes, serializer: Serializer, exc: Exception) -> str:
    """Why a job's data did not load, in words an operator can act on."""
    if raw.startswith(SIGNED_MAGIC) and not isinstance(serializer, SignedSerializer):
        return (
            "job data is signed, but QUEUE_SIGNING_KEY is not set here: give this process the producers' key"
        )
    reason = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, AttributeError | ImportError):
        hint = "its params hold an object whose class cannot be imported here"
        return f"job data does not decode: {reason} ({hint})"
    return f"job data does not decode: {reason}"


def main_objects(value: Any) -> list[str]:
    """What in `value` pickles by reference to `__main__` (a class or function of the script that
    enqueues): a worker, whose `__main__` is another program, can never load it."""
    finder = _MainFinder()
    try:
        finder.dump(value)
    except Exception:
        return []
    return finder.found


def decompress_bounded(job_id: str, raw: bytes, limit: int) -> bytes:
    """Inflate rq's zlib-compressed job data, refusing to produce more than `limit` bytes.

    rq inflates with no bound, so a small zlib bomb can exhaust a worker's memory. Data that
    is not zlib is returned as is (rq's own fallback).

    Raises:
        PayloadError: the stored data is over `limit`, or inflates past it.
    """
    if len(raw) > limit:
        raise PayloadError(job_id, f"stored job data is {len(raw)} bytes, over the limit of {limit}")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        return raw
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadError(job_id, f"job data inflates past the limit of {limit} bytes; refused")
    return out


def refuse_main_objects(job_name: str, params: Mapping[str, Any]) -> None:
    """Refuse params holding a class or function of the enqueueing script's `__main__`.

    Raises:
        SerializationError: naming the object and its key.
    """
    for key, value in params.items():
        found = main_objects(value)
        if found:
            raise SerializationError(
                job_name,
                f"{found[0]} is defined in the enqueueing script's __main__, which a worker cannot "
                "import: define it in a module that the workers can import",
                key,
            )
