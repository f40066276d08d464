"""A KV bucket handle whose reads of a key's latest value decode with msgspec (ADR-0145).

nats-py reads a key's latest value with the JetStream ``STREAM.MSG.GET`` request (served by the
stream's leader) and decodes the answer with :mod:`json`, :mod:`base64` and, for the stored
headers every compare-and-set write leaves, :mod:`email.parser`: in the executor's profile that
decoding was the largest single cost of an intent. :class:`FastReadKeyValue` sends the very same
request and reads the answer with one msgspec decoder and a plain header split, with nats-py's
meaning: a missing, deleted or purged key raises :class:`KeyNotFoundError`. Every other
operation (writes, reads of a given revision, watches) is nats-py's own.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from nats.errors import NoRespondersError
from nats.js.errors import (
    APIError,
    InvalidKeyError,
    KeyNotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE, KeyValue, _is_key_valid

__all__ = ["FastReadKeyValue"]


class _Message(msgspec.Struct):
    subject: str
    seq: int
    hdrs: bytes = b""  # base64 in the JSON; msgspec decodes it
    data: bytes = b""


class _Answer(msgspec.Struct):
    message: _Message | None = None
    error: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(_Answer)
_NOT_FOUND = 404


def _deleted_by(hdrs: bytes) -> str | None:
    """The KV operation that deleted the key, from the stored NATS headers (None: a value)."""
    for line in hdrs.split(b"\r\n")[1:]:  # the first line is the status line ("NATS/1.0")
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name_s, value_s = name.strip().decode(), value.strip().decode()
        if name_s == KV_OP and value_s in (KV_DEL, KV_PURGE):
            return value_s
        if name_s == KV_MARKER_REASON and value_s:
            return KV_PURGE  # a marker the server placed (e.g. a per-message TTL ran out)
    return None


class FastReadKeyValue(KeyValue):
    """nats-py's :class:`KeyValue` with a faster :meth:`get` of a key's latest value."""

    @classmethod
    def wrap(cls, kv: KeyValue) -> FastReadKeyValue:
        """The same bucket, bound as nats-py bound ``kv``."""
        if isinstance(kv, FastReadKeyValue):
            return kv
        return cls(name=kv._name, stream=kv._stream, pre=kv._pre, js=kv._js, direct=kv._direct)

    async def get(
        self, key: str, revision: int | None = None, validate_keys: bool = True
    ) -> KeyValue.Entry:
        """The latest entry of ``key`` (or, with ``revision``, that revision's: nats-py's read).

        Raises:
            KeyNotFoundError: if the key has no value (never written, deleted or purged).
        """
        if revision is not None or self._direct:
            return await super().get(key, revision, validate_keys)
        if validate_keys and not _is_key_valid(key):  # nats-py's check: both refuse the same keys
            raise InvalidKeyError
        return await self._latest(key)

    async def _latest(self, key: str) -> KeyValue.Entry:
        subject = f"{self._pre}{key}"
        js = self._js
        request = f"{js._prefix}.STREAM.MSG.GET.{self._stream}"
        payload = json.dumps({"last_by_subj": subject}).encode()
        try:
            reply = await js._nc.request(request, payload, timeout=js._timeout)
        except NoRespondersError as exc:
            raise ServiceUnavailableError from exc
        answer = _decoder.decode(reply.data)
        if answer.error is not None:
            if answer.error.get("code") == _NOT_FOUND:
                raise KeyNotFoundError
            raise APIError.from_error(answer.error)
        message = answer.message
        if message is None or message.subject != subject:
            raise KeyNotFoundError
        entry = KeyValue.Entry(
            bucket=self._name,
            key=key,
            value=message.data or None,
            revision=message.seq,
            delta=None,
            created=None,
            operation=None,
        )
        deleted = _deleted_by(message.hdrs) if message.hdrs else None
        if deleted is not None:
            raise KeyNotFoundError(entry, deleted)
        return entry
