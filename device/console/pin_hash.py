"""The service PIN as a value: the rules a new PIN must meet, its salted hash and the
per-device default PIN (no files here: :class:`device.console.auth.PinStore` keeps them).

The hash is salted scrypt (PBKDF2-SHA256 where :func:`hashlib.scrypt` is missing), compared
in constant time; the default PIN is HMAC-SHA256 of the machine identity under a 32-byte
secret salt, as decimal digits.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets

from device.exc import StorageError

#: Bytes of the secret salt (a shorter one is damaged).
SECRET_BYTES = 32
#: Digits of the per-device default PIN.
DEFAULT_PIN_DIGITS = 8
#: Allowed PIN lengths (digits only).
PIN_MIN, PIN_MAX = 6, 12
#: scrypt cost: 2**14 x 8 x 128 B = 16 MiB and tens of milliseconds per check on a Pi.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PBKDF2_ROUNDS = 200_000


def check_new_pin(pin: str) -> str:
    """Return ``pin`` if it is acceptable as a new PIN; ``ValueError`` saying why not."""
    if not pin.isdigit() or not pin.isascii():
        raise ValueError(f"a PIN is {PIN_MIN}-{PIN_MAX} digits (0-9) only")
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        raise ValueError(f"a PIN is {PIN_MIN}-{PIN_MAX} digits, not {len(pin)}")
    if len(set(pin)) == 1:
        raise ValueError("a PIN of one repeated digit is too easy to guess")
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):
        raise ValueError("a PIN of ascending or descending digits (123456) is too easy to guess")
    return pin


def hash_pin(pin: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> dict[str, object]:
    """Return a storable record of ``pin``: salted scrypt (PBKDF2-SHA256 if unavailable)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    if hasattr(hashlib, "scrypt"):
        digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
        return {
            "v": 1,
            "kdf": "scrypt",
            "n": n,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": salt.hex(),
            "hash": digest.hex(),
        }
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, PBKDF2_ROUNDS)
    return {
        "v": 1,
        "kdf": "pbkdf2-sha256",
        "rounds": PBKDF2_ROUNDS,
        "salt": salt.hex(),
        "hash": digest.hex(),
    }


def verify_pin(pin: str, record: dict[str, object]) -> bool:
    """Whether ``pin`` matches a record made by :func:`hash_pin` (constant-time compare)."""
    try:
        salt = bytes.fromhex(str(record["salt"]))
        want = bytes.fromhex(str(record["hash"]))
        if record["kdf"] == "scrypt":
            n, r, p = (int(str(record[k])) for k in ("n", "r", "p"))
            got = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=len(want))
        elif record["kdf"] == "pbkdf2-sha256":
            rounds = int(str(record["rounds"]))
            got = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, rounds, len(want))
        else:
            raise StorageError(f"unknown PIN hash kind {record['kdf']!r}")
    except (KeyError, ValueError, TypeError) as exc:
        raise StorageError(f"PIN record is damaged ({type(exc).__name__})") from None
    return hmac.compare_digest(got, want)


def derive_default_pin(identity: str, secret: bytes, digits: int = DEFAULT_PIN_DIGITS) -> str:
    """The per-device default PIN: HMAC-SHA256(secret, identity) as ``digits`` decimals.

    :raises ValueError: ``secret`` is shorter than :data:`SECRET_BYTES` (an empty key would
        make the PIN derivable from the identity alone).
    """
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"the PIN secret has {len(secret)} bytes, not {SECRET_BYTES}")
    number = int.from_bytes(hmac.new(secret, identity.encode(), hashlib.sha256).digest(), "big")
    return str(number % 10**digits).zfill(digits)
