"""Names that belong to keys: the first key to use a name owns it.

Trust on first use, as SSH itself does for host keys. A keyless person may
use any name no key owns, and owns nothing. Every name a key uses (at login
or by /nick) stays registered to it for good, so one key may hold at most
``per_key`` names: otherwise one key could take every name worth having.
A new key costs nothing, though, so one address may also register at most
``per_address`` names an hour (an IPv6 /64 counts as one address, its /48
as ten, as every per-address rule counts them): throwaway keys cannot hoard
names faster than that.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

from sshchat.chat.addresses import NETWORK_SHARE, address_keys
from sshchat.chat.names import name_key, skeleton
from sshchat.chat.store import Binding, Store, Unbind
from sshchat.chat.telemetry import LOOKALIKE, NAME_OWNED, Refusal


class NameRegistry:
    """Name -> owning key, kept in memory and in the store (a binding the
    store could not keep is let go: see ``claim``)."""

    WINDOW = 3600.0  # seconds over which ``per_address`` counts

    def __init__(
        self,
        bindings: dict[str, Binding],
        store: Store,
        clock: Callable[[], float],
        per_key: int,
        per_address: int,
    ) -> None:
        self._bindings = dict(bindings)
        self._per_key = per_key
        self._per_address = per_address
        self._registered_at: dict[str, deque[float]] = {}  # address key -> when names were registered from it
        # Every registration's (time, address key), oldest first: what lets
        # addresses that never come back be forgotten once their hour is over.
        self._registrations: deque[tuple[float, str]] = deque()
        self._held: defaultdict[str, set[str]] = defaultdict(set)  # key -> names it holds (an index)
        for b in bindings.values():
            self._held[b.fingerprint].add(b.name)
        self._shapes = {skeleton(b.name): b for b in bindings.values()}
        self._store = store
        self._clock = clock
        # Hears the address of each name registered here: on a cluster's bus,
        # published so every node counts it (see ``count_elsewhere``).
        self.on_register: Callable[[str], None] | None = None

    def binding(self, name: str) -> Binding | None:
        return self._bindings.get(name_key(name))

    def lookalike(self, name: str) -> Binding | None:
        """A registered name that looks like ``name`` but is not it."""
        owned = self._shapes.get(skeleton(name))
        return owned if owned is not None and name_key(owned.name) != name_key(name) else None

    def refusal(self, name: str, fingerprint: str | None) -> str | None:
        """Why ``fingerprint`` may not use ``name``, or None if it may."""
        twin = self.lookalike(name)
        if twin is not None and twin.fingerprint != fingerprint:
            return Refusal(f'the name "{name}" looks too much like "{twin.name}"; please pick another', LOOKALIKE)
        owned = self.binding(name)
        if owned is None and fingerprint is not None and len(self._held.get(fingerprint, ())) >= self._per_key:
            return Refusal(self._full(fingerprint), NAME_OWNED)
        if owned is None or owned.fingerprint == fingerprint:
            return None
        whose = "another key" if fingerprint else "a key"
        return Refusal(
            f'the name "{owned.name}" is registered to {whose}; connect with that key, or pick another name',
            NAME_OWNED,
        )

    def names_of(self, fingerprint: str) -> list[str]:
        """The names registered to ``fingerprint``, as they were registered."""
        return sorted(self._held.get(fingerprint, ()))

    def _full(self, fingerprint: str) -> str:
        held = self.names_of(fingerprint)
        names = f"{len(held)} name{'' if len(held) == 1 else 's'}"
        return (
            f"your key already holds {names} (at most {self._per_key}): {', '.join(held)}; "
            "use one of them, or ask an operator to /unregister one"
        )

    def would_register(self, name: str, fingerprint: str | None) -> bool:
        """Would ``claim`` bind ``name`` to ``fingerprint`` (a key, a name no
        key owns, a key with room for another)?"""
        return (
            fingerprint is not None
            and self.binding(name) is None
            and len(self._held.get(fingerprint, ())) < self._per_key
        )

    def address_refusal(self, address: str) -> str | None:
        """Why no more names may be registered from ``address`` this hour, if so."""
        host, site = address_keys(address)
        here, on_site = self._recent(host), self._recent(site) if site else 0
        if here < self._per_address and on_site < self._per_address * NETWORK_SHARE:
            return None
        return (
            f"{max(here, on_site)} names were registered from your address in the last hour "
            f"(at most {self._per_address}); try again later, or use a name your key already holds"
        )

    def _recent(self, where: str) -> int:
        """Names registered from ``where`` within the window."""
        self._forget_old()
        return len(self._registered_at.get(where, ()))

    def _forget_old(self) -> None:
        """Forget registrations older than the window, of every address
        (one that never comes back too): each is forgotten once, so this
        costs what was registered, not what is kept."""
        start = self._clock() - self.WINDOW
        while self._registrations and self._registrations[0][0] <= start:
            _, where = self._registrations.popleft()
            times = self._registered_at[where]
            times.popleft()
            if not times:
                del self._registered_at[where]

    def claim(
        self,
        name: str,
        fingerprint: str | None,
        then: Callable[[bool], None] | None = None,
        address: str | None = None,
    ) -> bool:
        """Bind an unowned ``name`` to ``fingerprint`` (keyless: nothing;
        a key holding its ``per_key`` names already: nothing; ``address``
        past its names this hour: nothing, see ``address_refusal``); False
        if there was nothing to bind (and ``then`` is not called).

        The binding holds at once, tentatively, so nobody else can take the
        name while the store writes it; if the store cannot keep it, it is
        released again and ``then`` hears False (True once durable).
        """
        if fingerprint is None or not self.would_register(name, fingerprint):
            return False
        if address is not None:
            if self.address_refusal(address) is not None:
                return False
            self._count(address)
            if self.on_register is not None:
                self.on_register(address)
        binding = Binding(name, fingerprint, self._clock())
        self._bind(binding)

        def saved(error: Exception | None) -> None:
            if error is not None and self._bindings.get(name_key(name)) is binding:
                self._unbind(binding)
            if then is not None:
                then(error is None)

        self._store.save(binding, saved)
        return True

    def count_elsewhere(self, address: str) -> None:
        """A name registered from ``address`` on another node (``Registered``
        on the bus): it counts here too, so the hourly cap of an address is
        one across the nodes, not one on each."""
        self._count(address)

    def _count(self, address: str) -> None:
        now = self._clock()
        for where in address_keys(address):
            if where is not None:
                self._registered_at.setdefault(where, deque()).append(now)
                self._registrations.append((now, where))

    def _bind(self, binding: Binding) -> None:
        self._bindings[name_key(binding.name)] = binding
        self._held[binding.fingerprint].add(binding.name)
        self._shapes.setdefault(skeleton(binding.name), binding)

    def _unbind(self, binding: Binding) -> None:
        del self._bindings[name_key(binding.name)]
        held = self._held[binding.fingerprint]
        held.discard(binding.name)
        if not held:  # a key with no names left is not kept
            del self._held[binding.fingerprint]
        if self._shapes.get(skeleton(binding.name)) is binding:
            del self._shapes[skeleton(binding.name)]

    def adopt(self, binding: Binding) -> None:
        """A binding another node saved (chat/state.py): held here too, in
        memory only; it replaces whatever this node had for the name."""
        held = self._bindings.get(name_key(binding.name))
        if held == binding:
            return
        if held is not None:
            self._unbind(held)
        self._bind(binding)

    def forget(self, key: str) -> None:
        """A name another node freed (``Unbind``, by its key): freed here too."""
        held = self._bindings.get(key)
        if held is not None:
            self._unbind(held)

    def release(self, name: str, then: Callable[[bool], None] | None = None) -> Binding | None:
        """Free ``name`` for anyone once that is durable (``then`` hears
        whether it was); returns the binding it has, None if none."""
        binding = self._bindings.get(name_key(name))
        if binding is None:
            return None

        def saved(error: Exception | None) -> None:
            # Freed only once durable: meanwhile the name stays its key's.
            if error is None and self._bindings.get(name_key(name)) is binding:
                self._unbind(binding)
            if then is not None:
                then(error is None)

        self._store.save(Unbind(name_key(name)), saved)
        return binding
