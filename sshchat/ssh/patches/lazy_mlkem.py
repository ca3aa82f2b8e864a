"""The ML-KEM key pair made when first used, which on a server is never.

What asyncssh does (2.24, ``_PyCAKEM.__init__``): for the post-quantum
hybrid key exchange (mlkem768x25519-sha256, the first choice of OpenSSH
9.9 and later and of asyncssh) it makes an ML-KEM key pair whenever the
KEM object is made, on both sides. The server side only encapsulates to
the client's public key (``encaps``) and never uses a key pair of its own.

What we change: ``__init__`` sets the same attributes, but ``_priv_key``
holds a stand-in that makes the key pair the first time anything of the
key is used (``get_public``, ``decaps``: the client side). A KEM object
made while the patch was in keeps working after it is taken out. Only the
pyca/cryptography implementation is touched, not the liboqs one.

Gain: one ML-KEM-768 key generation per login saved on the server: 88 us
of CPU (``python -m bench.patches``). Part of the 4.0 -> 3.3 ms per login
measured with skip_login_reload.py.
"""

from __future__ import annotations

from typing import Any

from sshchat.ssh.patches.touch import Function, SetBy, Swap, Swaps, Touch, Value

TOUCHES: tuple[Touch, ...] = (
    Function("asyncssh.crypto.pq:_PyCAKEM.__init__", "(self, alg_name)"),
    # our __init__ sets exactly what asyncssh's does (the key as a stand-in)
    SetBy("asyncssh.crypto.pq:_PyCAKEM.__init__", ("_priv_cls", "_pub_cls", "_priv_key"), only=True),
    Function("asyncssh.crypto.pq:_KEM.__init__", "(self, alg_name)"),
    Value("asyncssh.crypto.pq:_pyca_pq_alg_classes", kind=dict),
)


class _KeyOnFirstUse:
    """Stands in for an ML-KEM private key: makes it on first use."""

    __slots__ = ("_key", "_make")

    def __init__(self, make: Any) -> None:
        self._make = make
        self._key: Any = None

    def __getattr__(self, name: str) -> Any:  # public_key, decapsulate: what the key is used for
        if self._key is None:
            self._key = self._make()
        return getattr(self._key, name)


def _kem_init(self: Any, alg_name: bytes) -> None:
    from asyncssh.crypto import pq

    pq._KEM.__init__(self, alg_name)
    try:
        self._priv_cls, self._pub_cls = pq._pyca_pq_alg_classes[alg_name]
    except KeyError:
        raise ValueError("Unknown PQ algorithm " + alg_name.decode()) from None
    self._priv_key = _KeyOnFirstUse(self._priv_cls.generate)


_swaps = Swaps(Swap("asyncssh.crypto.pq:_PyCAKEM.__init__", _kem_init))

install, uninstall, installed = _swaps.install, _swaps.uninstall, _swaps.installed
