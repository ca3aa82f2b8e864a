"""The ML-KEM key pair made when first used, which on a server is never.

What asyncssh does (2.24, ``_PyCAKEM.__init__``): for the post-quantum
hybrid key exchange (mlkem768x25519-sha256, the first choice of OpenSSH
9.9 and later and of asyncssh) it makes an ML-KEM key pair whenever the
KEM object is made, on both sides. The server side only encapsulates to
the client's public key (``encaps``) and never uses a key pair of its own.

What we change: ``__init__`` sets everything it set before except the
private key, and ``_priv_key`` becomes a property that makes the key pair
on first use (``get_public``, ``decaps``: the client side). Only the
pyca/cryptography implementation is touched, not the liboqs one.

Gain: one ML-KEM-768 key generation per login saved on the server: 88 us
of CPU (``python -m bench.patches``). Part of the 4.0 -> 3.3 ms per login
measured with skip_login_reload.py.
"""

from __future__ import annotations

from typing import Any

from sshchat.ssh.patches.touch import Function, SetBy, Swap, Touch, Value

TOUCHES: tuple[Touch, ...] = (
    Function("asyncssh.crypto.pq:_PyCAKEM.__init__", "(self, alg_name)"),
    # our __init__ sets exactly what asyncssh's does, but the key pair
    SetBy("asyncssh.crypto.pq:_PyCAKEM.__init__", ("_priv_cls", "_pub_cls", "_priv_key"), only=True),
    Function("asyncssh.crypto.pq:_KEM.__init__", "(self, alg_name)"),
    Value("asyncssh.crypto.pq:_pyca_pq_alg_classes", kind=dict),
)


def _kem_init(self: Any, alg_name: bytes) -> None:
    from asyncssh.crypto import pq

    pq._KEM.__init__(self, alg_name)
    try:
        self._priv_cls, self._pub_cls = pq._pyca_pq_alg_classes[alg_name]
    except KeyError:
        raise ValueError("Unknown PQ algorithm " + alg_name.decode()) from None


def _priv_key(self: Any) -> Any:
    """The ML-KEM private key, made on first use."""
    key = self.__dict__.get("_sshchat_key")
    if key is None:
        key = self._sshchat_key = self._priv_cls.generate()
    return key


_swaps = (
    Swap("asyncssh.crypto.pq:_PyCAKEM.__init__", _kem_init),
    Swap("asyncssh.crypto.pq:_PyCAKEM._priv_key", property(_priv_key)),
)


def install() -> None:
    for swap in _swaps:
        swap.install()


def uninstall() -> None:
    for swap in _swaps:
        swap.uninstall()


def installed() -> bool:
    return _swaps[0].on
