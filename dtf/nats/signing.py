"""Signed events: an ed25519 signature in each message's headers, checked against a registry.

A connection that signs in with a key (`--creds`) signs every event it appends with that
key's seed.  The signature covers the subject and the payload (so an event can be neither
altered nor moved to another subject) and travels in headers, `Dtf-Signer` (the public key)
and `Dtf-Signature` (base64): the payload stays the event's canonical bytes, which every
reader decodes as before.

The registry is the KV bucket `dtf_keys`, which only `dtf server --auth` writes (the admin
key): one entry per public key with the key's name and role, and for a revoked key the last
stream sequence it may have written (`revoked_after`), so that history signed before a
revocation still verifies on a rebuild.  The entry `enforced_from` holds the sequence from
which every event must be signed: the history of a server that ran without keys before stays
readable, counted as unsigned.  Without the bucket (a server without `--auth`) nothing is
checked and every event is unsigned.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping

import msgspec
import nacl.exceptions
import nacl.signing
import nats.errors
import nats.js.errors
import nkeys
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from dtf.errors import StoreError
from events import topology
from events.records import Signer

SIGNER_HEADER = "Dtf-Signer"
SIGNATURE_HEADER = "Dtf-Signature"
_PUBLIC_KEY_BYTES = 35  # prefix byte, 32 key bytes, 2 checksum bytes


def signed_bytes(subject: str, data: bytes) -> bytes:
    """What a signature covers: the subject, a newline, the stored payload."""
    return subject.encode() + b"\n" + data


class Signing:
    """Signs the events one connection appends, with the seed it signed in with."""

    def __init__(self, seed: bytes) -> None:
        self._keys = nkeys.from_seed(bytearray(seed))
        self.public_key = self._keys.public_key.decode()

    def headers(self, subject: str, data: bytes) -> dict[str, str]:
        signature = self._keys.sign(signed_bytes(subject, data))
        return {
            SIGNER_HEADER: self.public_key,
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        }


class KeyEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One public key in the registry."""

    name: str
    role: str
    revoked_after: int = 0  # 0: not revoked; else the last stream sequence it may sign


def verify_key(public_key: str) -> nacl.signing.VerifyKey | None:
    """The ed25519 key inside an nkey user public key ('U...'), None when it is not one."""
    try:
        raw = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _PUBLIC_KEY_BYTES or raw[0] != nkeys.PREFIX_BYTE_USER:
        return None
    if nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        return None
    return nacl.signing.VerifyKey(raw[1:33])


class Verifier:
    """Checks each stored message's signature against the registry, for one connection.

    `load` reads the registry once; a key met later that it does not know is looked up (a key
    `dtf auth add` made after we started).  A revoked key's entry may be stale here, which is
    harmless: the server refuses the key before the registry records the revocation.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._kv: KeyValue | None = None
        self._keys: dict[str, tuple[KeyEntry, nacl.signing.VerifyKey]] = {}
        self.enforced_from = 0  # 0: no registry, nothing is checked
        self.loaded = False

    @classmethod
    def of(cls, keys: Mapping[str, KeyEntry], enforced_from: int = 1) -> Verifier:
        """A verifier of exactly these keys, with no server to look others up in (tests,
        benchmarks); a key that is not a user public key is left out."""
        verifier = cls(None)  # type: ignore[arg-type]  # never asked: loaded already
        verifier.enforced_from = enforced_from
        verifier.loaded = True
        for public_key, entry in keys.items():
            if (vk := verify_key(public_key)) is not None:
                verifier._keys[public_key] = (entry, vk)
        return verifier

    @property
    def active(self) -> bool:
        return self.enforced_from > 0

    async def load(self) -> None:
        """Read the registry (once); no bucket means a server without keys."""
        if self.loaded:
            return
        try:
            kv = self._kv = await self._js.key_value(topology.KEYS_BUCKET)
            entry = await kv.get(topology.KEYS_ENFORCED)
            self.enforced_from = int(entry.value or b"0")
            for key in await kv.keys():
                if key != topology.KEYS_ENFORCED:
                    await self._lookup(key)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.KeyNotFoundError):
            self.enforced_from = 0
        except nats.js.errors.NoKeysError:
            pass
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            raise StoreError(f"cannot read the registry of signing keys: {exc}") from None
        self.loaded = True

    async def _lookup(self, public_key: str) -> tuple[KeyEntry, nacl.signing.VerifyKey] | None:
        known = self._keys.get(public_key)
        if known is not None or self._kv is None:
            return known
        vk = verify_key(public_key)
        if vk is None:
            return None
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):
            entry = await self._kv.get(public_key)
            try:
                parsed = msgspec.json.decode(entry.value or b"", type=KeyEntry)
            except msgspec.DecodeError:
                return None
            self._keys[public_key] = (parsed, vk)
            return self._keys[public_key]
        return None

    async def verify(
        self, seq: int, subject: str, data: bytes, headers: Mapping[str, str] | None
    ) -> Signer | str | None:
        """The verified signer of a stored message; None when it is unsigned and may be; a
        string saying why it is refused otherwise."""
        if not self.active:
            return None
        public_key = headers.get(SIGNER_HEADER) if headers else None
        if public_key is None:
            if seq < self.enforced_from:
                return None
            return "unsigned: every event on this server must be signed by a dtf key"
        known = await self._lookup(public_key)
        if known is None:
            return f"signed by a key the server does not know ({public_key[:10]}...)"
        entry, vk = known
        if entry.revoked_after and seq > entry.revoked_after:
            return f"signed by the key of {entry.name!r}, revoked at seq {entry.revoked_after}"
        try:
            signature = base64.b64decode((headers or {}).get(SIGNATURE_HEADER, ""), validate=True)
            vk.verify(signed_bytes(subject, data), signature)
        except (binascii.Error, ValueError, nacl.exceptions.BadSignatureError):
            return f"the signature of {entry.name!r} does not match the event (altered or forged)"
        return Signer(entry.name, entry.role)


async def publish_registry(
    js: JetStreamContext, keys: Mapping[str, KeyEntry], enforced_from: int
) -> None:
    """Write the registry (admin only): every key's entry, revocations kept as first recorded,
    and `enforced_from` unless it is set already."""
    try:
        try:
            kv = await js.key_value(topology.KEYS_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            kv = await js.create_key_value(bucket=topology.KEYS_BUCKET, history=1)
        try:
            await kv.get(topology.KEYS_ENFORCED)
        except nats.js.errors.KeyNotFoundError:
            await kv.put(topology.KEYS_ENFORCED, str(max(1, enforced_from)).encode())
        for public_key, entry in keys.items():
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                old = msgspec.json.decode((await kv.get(public_key)).value or b"", type=KeyEntry)
                if old.revoked_after:
                    continue  # a revocation is history: never moved
            await kv.put(public_key, msgspec.json.encode(entry))
    except (nats.errors.Error, TimeoutError, msgspec.DecodeError) as exc:
        raise StoreError(f"cannot write the registry of signing keys: {exc}") from None
