import pickle
import zlib

import pytest

from app.infrastructure.queue.errors import PayloadError, SignatureError
from app.infrastructure.queue.serialization import (
    JSONSerializer,
    PickleSerializer,
    SignedSerializer,
    decompress_bounded,
    make_serializer,
)

KEY = b"k" * 32
OLD = b"o" * 32


def test_signed_round_trip_and_rotation():
    old = SignedSerializer(PickleSerializer(), OLD)
    new = SignedSerializer(PickleSerializer(), KEY, old_keys=[OLD])
    blob = old.dumps({"a": 1})
    assert new.loads(blob) == {"a": 1}
    assert new.loads(new.dumps([1, 2])) == [1, 2]


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle ran')",))


@pytest.mark.parametrize(
    "blob",
    [
        pickle.dumps(Boom()),
        b"\x00TQS1" + b"x" * 32 + pickle.dumps(Boom()),
        b"\x00TQS1",
        b"",
    ],
)
def test_unsigned_or_forged_data_is_refused_before_unpickling(blob):
    signed = SignedSerializer(PickleSerializer(), KEY)
    with pytest.raises(SignatureError):
        signed.loads(blob)


def test_data_signed_with_an_unknown_key_is_refused():
    other = SignedSerializer(PickleSerializer(), b"z" * 32)
    with pytest.raises(SignatureError):
        SignedSerializer(PickleSerializer(), KEY).loads(other.dumps("x"))


def test_repr_hides_keys():
    assert "kkkk" not in repr(SignedSerializer(PickleSerializer(), KEY))


def test_make_serializer():
    assert isinstance(make_serializer("json"), JSONSerializer)
    assert isinstance(make_serializer("pickle"), PickleSerializer)
    assert isinstance(make_serializer("json", KEY).inner, JSONSerializer)


def test_bounded_decompress():
    data = b"a" * 1000
    assert decompress_bounded("j", zlib.compress(data), 2000) == data
    assert decompress_bounded("j", data, 2000) == data  # not zlib: used as is, like rq
    bomb = zlib.compress(b"\0" * (50 * 1024 * 1024))
    with pytest.raises(PayloadError):
        decompress_bounded("j", bomb, 1024 * 1024)
    with pytest.raises(PayloadError):
        decompress_bounded("j", b"x" * 3000, 2000)


@pytest.mark.parametrize("key", [b"k" * 16, b"k" * 64, b"long" * 40])
def test_tags_are_standard_hmac_sha256(key):
    import hmac

    signed = SignedSerializer(PickleSerializer(), key)
    payload = PickleSerializer.dumps({"x": 1})
    blob = signed.dumps({"x": 1})
    assert blob[5:37] == hmac.digest(key, payload, "sha256")
