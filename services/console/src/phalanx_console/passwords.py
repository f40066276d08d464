"""Password hashes of console users (scrypt from the standard library) and the CLI that makes
them: ``phalanx-console-hash`` reads a password from standard input and prints its hash.

A hash is ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (salt and key URL-safe base64): no ``:`` or ``,``,
so it fits the ``PHALANX_CONSOLE_USERS`` list.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import secrets
import sys

__all__ = ["hash_password", "main", "verify_password"]

_N, _R, _P = 2**14, 8, 1
_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=_KEY_BYTES
    )


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``."""
    if not password:
        raise ValueError("an empty password is not a password")
    salt = secrets.token_bytes(16)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(_scrypt(password, salt, _N, _R, _P))}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt" or not password:
            return False
        n_i, r_i, p_i = int(n), int(r), int(p)
        if not (2 <= n_i <= 2**20 and 1 <= r_i <= 32 and 1 <= p_i <= 16):
            return False
        computed = _scrypt(password, _unb64(salt), n_i, r_i, p_i)
        return hmac.compare_digest(computed, _unb64(key))
    except ValueError:
        return False


def main() -> int:
    """Print the hash of the password typed (or piped) in."""
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if not password:
        print("empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
