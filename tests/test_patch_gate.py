"""The start-up gate of the asyncssh patches (sshchat/ssh/patches/__init__.py
and touch.py): it lets them all in or keeps them all out, says why in the
log, and never stops the server, whatever a new asyncssh release changed.
What each patch does is tested in test_patches.py (the direct writer in
test_direct_write.py)."""

from __future__ import annotations

import inspect
import logging
import sys
import types

import asyncssh
import pytest

from sshchat.ssh import patches
from sshchat.ssh.patches import gcm_one_context, skip_login_reload
from sshchat.ssh.patches.touch import Function, Swap, Swaps, check
from tests.support.server import Server


@pytest.fixture(autouse=True)
def patches_back():
    """Whatever a test did to the patches, the next one finds them in."""
    yield
    patches.install()


@pytest.fixture
def bare():
    """asyncssh as it is at the start of the test, so that a test may
    change asyncssh as a new release would before the gate looks."""
    patches.uninstall()


def gate_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("asyncssh patches off:")]


def env_bound_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == patches.ENV_BOUND_OFF]


async def chat_works(server: Server) -> None:
    alice = await server.connect("alice")
    bob = await server.connect("bob")
    await alice.wait_for("bob joined")
    alice.line("hello from asyncssh as it is")
    await bob.wait_for("alice: hello from asyncssh as it is")


async def test_gate_refuses_an_asyncssh_it_was_not_checked_against(start_server, bare, monkeypatch, caplog) -> None:
    """A release outside the list (a security fix too) runs without any
    patch, the log says why in one line, and people still chat."""
    monkeypatch.setattr(asyncssh, "__version__", "2.25.0")
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        server: Server = await start_server()
    assert gate_lines(caplog) == ["asyncssh patches off: asyncssh 2.25.0 is not one of the checked versions 2.24.1"]
    assert [r.levelno for r in env_bound_warnings(caplog)] == [logging.WARNING]  # its own line, for operators
    assert patches.installed() == []
    assert "send_packet" not in asyncssh.SSHServerConnection.__dict__  # asyncssh's own, inherited
    await chat_works(server)


def test_the_installed_asyncssh_is_one_the_patches_were_checked_against() -> None:
    """Fails loudly on an asyncssh release the patches were not checked
    against, rather than letting the suite pass on a server that runs
    slower and without the bound on environment variables."""
    installed = asyncssh.__version__
    assert installed in patches.CHECKED_VERSIONS, (
        f"asyncssh {installed} is installed, but sshchat's asyncssh patches were checked only against "
        f"{', '.join(patches.CHECKED_VERSIONS)}: the server runs with every patch off (slower, and no bound "
        "on environment variables). To take the new release in: read what it changed in the code the "
        "patches touch (the TOUCHES list of each module in sshchat/ssh/patches/), run the tests, then add "
        f"{installed!r} to CHECKED_VERSIONS in sshchat/ssh/patches/__init__.py."
    )
    assert patches.problems() == [], "the gate fails on the installed asyncssh: see the problems listed"


def test_the_checked_versions_are_exact_releases() -> None:
    assert patches.problems("2.24.1") == []
    for other in ("2.24.0", "2.24.2", "2.24", "2.25.0", "3.0.0"):
        assert patches.problems(other) == [f"asyncssh {other} is not one of the checked versions 2.24.1"]


async def test_gate_names_a_touched_function_that_changed(start_server, bare, monkeypatch, caplog) -> None:
    """A function a patch replaces now takes other parameters (as a
    distribution's backported fix might, under the same version number):
    no patch goes in, the log names it, the server runs."""
    original = asyncssh.channel.SSHServerChannel._process_env_request

    def changed(self, pkt):
        return original(self, pkt)

    monkeypatch.setattr(asyncssh.channel.SSHServerChannel, "_process_env_request", changed)
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        server: Server = await start_server()
    assert gate_lines(caplog) == [
        "asyncssh patches off: asyncssh.channel:SSHServerChannel._process_env_request "
        "takes (self, pkt), not (self, packet)"
    ]
    assert patches.installed() == []
    await chat_works(server)


async def test_a_check_that_raises_is_a_failed_check(start_server, bare, monkeypatch, caplog) -> None:
    """A change no check foresaw (here a signature inspect cannot read)
    makes the check raise: that is one more failed check, named in the
    log line, not a server that cannot start."""
    original = asyncssh.connection.SSHServerConnection.reload_config

    async def unreadable(self):
        await original(self)

    unreadable.__signature__ = "not a signature"  # what inspect.signature cannot read: TypeError
    monkeypatch.setattr(asyncssh.connection.SSHServerConnection, "reload_config", unreadable)
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        server: Server = await start_server()
    (line,) = gate_lines(caplog)
    assert line.startswith(
        "asyncssh patches off: asyncssh.connection:SSHServerConnection.reload_config could not be checked (TypeError: "
    ), line
    assert patches.installed() == []
    await chat_works(server)


def test_any_exception_in_a_check_names_the_touch(monkeypatch) -> None:
    class Exploding:
        path = "asyncssh.somewhere:Thing.attr"

        def problem(self) -> str | None:
            raise RuntimeError("surprise")

    assert check(Exploding()) == "asyncssh.somewhere:Thing.attr could not be checked (RuntimeError: surprise)"
    monkeypatch.setattr(skip_login_reload, "TOUCHES", (*skip_login_reload.TOUCHES, Exploding()))
    assert patches.problems() == ["asyncssh.somewhere:Thing.attr could not be checked (RuntimeError: surprise)"]


async def test_a_patch_that_fails_to_install_leaves_asyncssh_as_it_is(start_server, bare, monkeypatch, caplog) -> None:
    """gcm_one_context raises half way through its install, after the
    patches before it went in: every patch comes out again, one line says
    why, and people chat on asyncssh as it is."""
    before = _class_attributes()

    def half_then_boom() -> None:
        gcm_one_context._swaps.swaps[0].install()
        raise RuntimeError("boom")

    monkeypatch.setattr(gcm_one_context, "install", half_then_boom)
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        server: Server = await start_server()
    assert gate_lines(caplog) == [
        "asyncssh patches off: installing gcm_one_context failed (RuntimeError: boom); every patch taken out again"
    ]
    assert len(env_bound_warnings(caplog)) == 1
    assert patches.installed() == []
    assert _class_attributes() == before  # nothing of ours left in asyncssh
    assert patches.describe().startswith("asyncssh patches off: installing gcm_one_context failed")
    await chat_works(server)


def test_env_bound_warning_only_when_the_gate_keeps_it_out(monkeypatch, caplog) -> None:
    """The bound is on whenever the gate passes, fast_path or not; when the
    gate keeps it out, a warning of its own says so. The client side's
    patches (the load generator's) never include it: no warning there."""

    def ours() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "sshchat"]

    with caplog.at_level(logging.WARNING, logger="sshchat"):
        assert patches.install()
        assert patches.install(trims=False)
        assert patches.install(patches=patches.FOR_CLIENTS)
        assert ours() == []
        monkeypatch.setattr(patches, "CHECKED_VERSIONS", ("0.0.1",))
        assert not patches.install(patches=patches.FOR_CLIENTS)
        assert env_bound_warnings(caplog) == []
        assert not patches.install(trims=False)
    assert "env_bounds" not in patches.installed()
    (warning,) = env_bound_warnings(caplog)
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "environment variables" in message and "any number" in message and "any size" in message


def _swaps_on_a_stand_in(monkeypatch, second: str = "Thing.b") -> tuple[type, Swaps]:
    """Swaps of two methods of a stand-in module's class (the second
    at ``second``, which may name something missing)."""
    module = types.ModuleType("stand_in_for_asyncssh")

    class Thing:
        def a(self) -> str:
            return "theirs a"

        def b(self) -> str:
            return "theirs b"

    module.Thing = Thing
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return Thing, Swaps(Swap(f"{module.__name__}:Thing.a", lambda self: "ours a"),
                        Swap(f"{module.__name__}:{second}", lambda self: "ours b"))


def test_swaps_go_in_and_out_together(monkeypatch) -> None:
    thing, swaps = _swaps_on_a_stand_in(monkeypatch)
    assert not swaps.installed()
    swaps.install()
    assert swaps.installed() and (thing().a(), thing().b()) == ("ours a", "ours b")
    swaps.swaps[1].uninstall()
    assert not swaps.installed()  # in only when every one is in
    swaps.uninstall()
    assert not swaps.installed()
    assert (thing().a(), thing().b()) == ("theirs a", "theirs b")


def test_swaps_that_fail_half_way_take_out_what_went_in(monkeypatch) -> None:
    thing, swaps = _swaps_on_a_stand_in(monkeypatch, second="Gone.b")  # no such class: it cannot go in
    with pytest.raises(AttributeError):
        swaps.install()
    assert not swaps.installed()
    assert thing().a() == "theirs a"


def _init_without(cls: type, attr: str):
    """cls.__init__ rewritten not to set ``attr`` (as a new release might)."""
    source = inspect.getsource(cls.__init__)
    lines = [line for line in source.splitlines() if f"self.{attr} =" not in line and f"self.{attr}:" not in line]
    namespace = dict(vars(inspect.getmodule(cls)))
    indent = len(lines[0]) - len(lines[0].lstrip())
    exec("\n".join(line[indent:] for line in lines), namespace)
    return namespace["__init__"]


@pytest.mark.parametrize(
    ("owner", "name", "make", "said"),
    [
        ("asyncssh.connection:SSHServerConnection", "reload_config", None,
         "asyncssh.connection:SSHServerConnection.reload_config is missing"),
        ("asyncssh.crypto.cipher:GCMCipher", "encrypt_and_sign", lambda: (lambda self, header, data, aad: None),
         "asyncssh.crypto.cipher:GCMCipher.encrypt_and_sign takes (self, header, data, aad), not (self, header, data)"),
        ("asyncssh.connection:SSHServerConnection", "reload_config", lambda: (lambda self: None),
         "asyncssh.connection:SSHServerConnection.reload_config is not a coroutine function"),
        ("asyncssh.encryption:", "GCMEncryption", lambda: (lambda cipher: None),
         "asyncssh.encryption:GCMEncryption is not a class; "
         "asyncssh.encryption:GCMEncryption.__init__ is not a function"),  # all that failed, in one line
        ("asyncssh.constants:", "MSG_CHANNEL_DATA", lambda: 95,
         "asyncssh.constants:MSG_CHANNEL_DATA is 95, not 94"),
        ("asyncssh.logging:SSHLogger", "_debug_level", lambda: "1",
         "asyncssh.logging:SSHLogger._debug_level is a str, not a int"),
        ("asyncssh.channel:SSHChannel", "__init__", lambda: _init_without(asyncssh.channel.SSHChannel, "_send_buf"),
         "asyncssh.channel:SSHChannel.__init__ no longer sets _send_buf"),
    ],
)
def test_gate_names_each_kind_of_missing_or_changed_name(bare, monkeypatch, caplog, owner, name, make, said) -> None:
    """Each kind of check, failing alone: install() puts nothing in and
    says which name, in one line."""
    from sshchat.ssh.patches.touch import lookup

    target = lookup(owner.rstrip(":"))
    if make is None:
        monkeypatch.delattr(target, name)
    else:
        monkeypatch.setattr(target, name, make())
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        assert patches.install() is False
    assert patches.installed() == []
    assert gate_lines(caplog) == [f"asyncssh patches off: {said}"]


def test_gate_sees_a_replaced_function_that_sets_more_than_ours(bare, monkeypatch, caplog) -> None:
    """lazy_mlkem replaces _PyCAKEM.__init__ whole: should asyncssh's set
    anything more, ours would leave it unset."""
    from asyncssh.crypto import pq

    def grown(self, alg_name):  # asyncssh's, and one attribute more
        pq._KEM.__init__(self, alg_name)
        self._priv_cls, self._pub_cls = pq._pyca_pq_alg_classes[alg_name]
        self._priv_key = self._priv_cls.generate()
        self._extra = True

    monkeypatch.setattr(pq._PyCAKEM, "__init__", grown)
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        assert patches.install() is False
    assert gate_lines(caplog) == ["asyncssh patches off: asyncssh.crypto.pq:_PyCAKEM.__init__ now also sets _extra"]


def _class_attributes() -> dict[str, object]:
    """Every attribute of every class in the asyncssh modules the patches touch."""
    import asyncssh.channel
    import asyncssh.connection
    import asyncssh.crypto.chacha
    import asyncssh.crypto.cipher
    import asyncssh.crypto.pq
    import asyncssh.encryption
    import asyncssh.logging
    import asyncssh.packet

    found = {}
    for module in (asyncssh.channel, asyncssh.connection, asyncssh.crypto.chacha, asyncssh.crypto.cipher,
                   asyncssh.crypto.pq, asyncssh.encryption, asyncssh.logging, asyncssh.packet):
        for cls_name, cls in vars(module).items():
            if isinstance(cls, type) and cls.__module__ == module.__name__ and cls.__name__ == cls_name:
                for attr, value in vars(cls).items():
                    found[f"{module.__name__}:{cls_name}.{attr}"] = value
    return found


def test_every_replaced_name_is_declared_and_uninstall_restores_asyncssh() -> None:
    patches.uninstall()
    before = _class_attributes()
    assert patches.install()
    after = _class_attributes()
    changed = {path for path in before.keys() | after.keys() if before.get(path) is not after.get(path)}
    declared = {touch.path for patch in patches.ALL for touch in patch.TOUCHES}
    assert changed, "the patches replace something"
    assert changed <= declared
    assert patches.install()  # twice: the same
    assert _class_attributes() == after
    patches.uninstall()
    assert _class_attributes() == before


def test_each_patch_says_what_it_does_and_gains() -> None:
    for patch in patches.ALL:
        doc = patch.__doc__ or ""  # type: ignore[attr-defined]
        assert "What asyncssh does" in doc and "What we change" in doc and "Gain" in doc, patches.name(patch)
        assert patch.TOUCHES, patches.name(patch)


async def test_fast_path_off_keeps_the_bound_and_drops_the_trims(start_server) -> None:
    server: Server = await start_server(fast_path=False)
    assert patches.installed() == ["env_bounds", "bounded_receive"]
    assert patches.describe() == "asyncssh patches on: env_bounds, bounded_receive (fast_path = false)"
    await chat_works(server)


def test_function_touch_reads_parameters_as_written() -> None:
    send_packet = "asyncssh.connection:SSHConnection.send_packet"
    assert Function(send_packet, "(self, pkttype, *args, handler)").problem() is None
    assert Function(send_packet, "(self, pkttype, *args)").problem() == (
        f"{send_packet} takes (self, pkttype, *args, handler), not (self, pkttype, *args)"
    )
    assert Function("asyncssh.nonexistent:thing").problem() == "asyncssh.nonexistent:thing is missing"
