"""Names that belong to keys: the first key to use a name owns it.

Trust on first use, as SSH itself does for host keys. A keyless person may
use any name no key owns, and owns nothing. Every name a key uses (at login
or by /nick) stays registered to it for good, so one key may hold at most
``per_key`` names: otherwise one key could take every name worth having.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sshchat.chat.names import name_key, skeleton
from sshchat.chat.store import Binding, Store, Unbind


class NameRegistry:
    """Name -> owning key, kept in memory and in the store (a binding the
    store could not keep is let go: see ``claim``)."""

    def __init__(
        self, bindings: dict[str, Binding], store: Store, clock: Callable[[], float], per_key: int
    ) -> None:
        self._bindings = dict(bindings)
        self._per_key = per_key
        self._held: defaultdict[str, set[str]] = defaultdict(set)  # key -> names it holds (an index)
        for b in bindings.values():
            self._held[b.fingerprint].add(b.name)
        self._shapes = {skeleton(b.name): b for b in bindings.values()}
        self._store = store
        self._clock = clock

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
            return f'the name "{name}" looks too much like "{twin.name}"; please pick another'
        owned = self.binding(name)
        if owned is None and fingerprint is not None and len(self._held.get(fingerprint, ())) >= self._per_key:
            return self._full(fingerprint)
        if owned is None or owned.fingerprint == fingerprint:
            return None
        whose = "another key" if fingerprint else "a key"
        return (
            f'the name "{owned.name}" is registered to {whose}; '
            f"connect with that key, or pick another name"
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

    def claim(self, name: str, fingerprint: str | None, then: Callable[[bool], None] | None = None) -> bool:
        """Bind an unowned ``name`` to ``fingerprint`` (keyless: nothing;
        a key holding its ``per_key`` names already: nothing); False if
        there was nothing to bind (and ``then`` is not called).

        The binding holds at once, tentatively, so nobody else can take the
        name while the store writes it; if the store cannot keep it, it is
        released again and ``then`` hears False (True once durable).
        """
        if fingerprint is None or self.binding(name) is not None:
            return False
        if len(self._held.get(fingerprint, ())) >= self._per_key:
            return False
        binding = Binding(name, fingerprint, self._clock())
        self._bind(binding)

        def saved(error: Exception | None) -> None:
            if error is not None and self._bindings.get(name_key(name)) is binding:
                self._unbind(binding)
            if then is not None:
                then(error is None)

        self._store.save(binding, saved)
        return True

    def _bind(self, binding: Binding) -> None:
        self._bindings[name_key(binding.name)] = binding
        self._held[binding.fingerprint].add(binding.name)
        self._shapes.setdefault(skeleton(binding.name), binding)

    def _unbind(self, binding: Binding) -> None:
        del self._bindings[name_key(binding.name)]
        self._held[binding.fingerprint].discard(binding.name)
        if self._shapes.get(skeleton(binding.name)) is binding:
            del self._shapes[skeleton(binding.name)]

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
