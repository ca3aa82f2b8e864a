"""One path for every message: what a person types and what a bot posts meet
the same checks (rate limit, cleaning, length, mute, storage) and the same
refusals, word for word. Tested in the core, without sockets."""

from __future__ import annotations

import pytest

from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.store import Mute
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder, person
from tests.support.settings import chat_settings


class Bot:
    """A bot session as the core sees it: a visitor and the outcome of each post."""

    def __init__(self, hub: Hub, name: str, fingerprint: str | None = None) -> None:
        self.hub = hub
        self.outlet = Recorder()
        self.visitor = hub.visitor(name, fingerprint, self.outlet)
        self.outcomes: list[str | None] = []

    def post(self, text: str, room: str = "#lobby") -> str | None:
        """Post ``text``; the refusal, or None once delivered."""
        before = len(self.outcomes)
        self.hub.post(self.visitor, room, text, self.outcomes.append)
        assert len(self.outcomes) == before + 1, "post must always report its outcome"
        return self.outcomes[-1]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_hub(clock: Clock, **changes: object) -> tuple[Hub, Recorder]:
    """A hub with one reader in the lobby, who sees what reaches others."""
    hub = Hub(MemoryStore(), chat_settings(**changes), clock)
    reader = Recorder()
    hub.join("reader", None, reader)
    return hub, reader


def test_a_post_reaches_the_room_like_a_typed_line(clock: Clock) -> None:
    hub, reader = make_hub(clock)
    alice, _ = person(hub, "alice")
    hub.handle_line(alice, "from a person")
    assert Bot(hub, "deploybot").post("from a bot") is None
    assert reader.texts(Kind.CHAT) == ["from a person", "from a bot"]
    ids = [m.id for m in reader.messages if m.kind is Kind.CHAT]
    assert ids == sorted(ids) and ids[0] > 0  # both committed, in one order


def test_the_same_rate_limit_and_the_same_refusal(clock: Clock) -> None:
    hub, reader = make_hub(clock, rate_burst=2, rate_per_second=0.01)
    alice, a = person(hub, "alice")
    for n in range(3):
        hub.handle_line(alice, f"typed {n}")
    bot = Bot(hub, "bot")
    outcomes = [bot.post(f"posted {n}") for n in range(3)]
    assert reader.texts(Kind.CHAT) == ["typed 0", "typed 1", "posted 0", "posted 1"]
    assert outcomes[:2] == [None, None]
    refusal = outcomes[2]
    assert refusal is not None and refusal.startswith("slow down: 2 messages at once, then 0.01 a second")
    assert a.notices[-1] == refusal


def test_a_person_and_a_bot_with_one_key_share_one_allowance(clock: Clock) -> None:
    """The limit belongs to the identity, whichever way it sends."""
    hub, reader = make_hub(clock, rate_burst=2, rate_per_second=0.01)
    alice, _ = person(hub, "alice", "SHA256:alice-key")
    hub.handle_line(alice, "one")
    hub.handle_line(alice, "two")
    refusal = Bot(hub, "alice", "SHA256:alice-key").post("three, by script")
    assert refusal is not None and refusal.startswith("slow down")
    assert reader.texts(Kind.CHAT) == ["one", "two"]


def test_the_same_length_limit_and_the_same_refusal(clock: Clock) -> None:
    hub, reader = make_hub(clock, max_message_chars=10)
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "x" * 11)
    refusal = Bot(hub, "bot").post("y" * 11)
    assert refusal == "message too long (11 characters, at most 10); not sent"
    assert a.notices[-1] == refusal
    assert reader.texts(Kind.CHAT) == []
    hub.handle_line(alice, "x" * 10)
    assert Bot(hub, "bot2").post("y" * 10) is None
    assert reader.texts(Kind.CHAT) == ["x" * 10, "y" * 10]


def test_the_same_cleaning(clock: Clock) -> None:
    hub, reader = make_hub(clock)
    alice, a = person(hub, "alice")
    dirty = "\x1b[31mred\x1b[0m \u202eevil\x07"
    hub.handle_line(alice, dirty)
    assert Bot(hub, "bot").post(dirty) is None
    assert reader.texts(Kind.CHAT) == ["red evil", "red evil"]
    # Nothing left once cleaned: a person's line is dropped quietly, a bot is told.
    notices = len(a.notices)
    hub.handle_line(alice, "\x1b[2J\u200b")
    assert Bot(hub, "bot2").post("\x1b[2J\u200b") == "nothing to say"
    assert len(a.notices) == notices and len(reader.texts(Kind.CHAT)) == 2


def test_the_same_mute_and_the_same_refusal(clock: Clock) -> None:
    hub, reader = make_hub(clock)
    alice, a = person(hub, "alice")
    bot = Bot(hub, "bot")
    for target in (alice.person, bot.visitor.person):  # keyless: this very session
        hub.moderation.mute(Mute(target, None, "", "op", clock()))
    hub.handle_line(alice, "can anyone hear me?")
    refusal = bot.post("or me?")
    assert refusal == "you are muted: nobody else sees your messages"
    assert a.notices[-1] == refusal
    assert a.texts(Kind.CHAT) == ["can anyone hear me?"]  # their own line, to them alone
    assert reader.texts(Kind.CHAT) == []


def test_a_storage_error_is_the_same_refusal(clock: Clock) -> None:
    store = MemoryStore()
    hub = Hub(store, chat_settings(), clock)
    alice, a = person(hub, "alice")
    store.fail_next = True
    hub.handle_line(alice, "lost")
    store.fail_next = True
    refusal = Bot(hub, "bot").post("lost too")
    assert refusal is not None and refusal.startswith("your message could not be saved")
    assert a.notices[-1] == refusal


def test_commands_pay_the_rate_limit_too(clock: Clock) -> None:
    hub, reader = make_hub(clock, rate_burst=2, rate_per_second=0.01)
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "/names")
    hub.handle_line(alice, "/me waves")
    hub.handle_line(alice, "/me waves again")
    assert reader.texts(Kind.EMOTE) == ["waves"]
    assert a.notices[-1].startswith("slow down")


def test_a_line_of_your_own_elsewhere_is_not_a_mention(clock: Clock) -> None:
    """Lines that name you reach you in rooms you are not looking at, but not
    your own (a script posting under your key), nor notices."""
    hub, _ = make_hub(clock)
    alice, a = person(hub, "alice", "SHA256:alice-key")
    carol, _ = person(hub, "carol")
    for who in (alice, carol):
        hub.handle_line(who, "/join #ops")
    hub.handle_line(alice, "/join #lobby")
    Bot(hub, "alice", "SHA256:alice-key").post("alice deployed v2", "#ops")
    hub.handle_line(carol, "thanks alice")
    hub.handle_line(carol, "/topic alice owns this room now")
    assert [m.text for m in a.elsewhere] == ["thanks alice"]
    assert alice.unread["#ops"] == 2


def test_words_in_a_muted_persons_name_reach_nobody_by_other_ways(clock: Clock) -> None:
    """A muted room creator cannot be heard through a topic, a kick's reason
    or an away note: each is refused with a notice that says why. A kick
    with no words of theirs still works (it is not speech)."""
    hub, reader = make_hub(clock)
    alice, a = person(hub, "alice", "SHA256:alice-key")
    bob, b = person(hub, "bob")
    hub.handle_line(alice, "/join #den")  # made by alice's key: she may set its topic and kick
    hub.handle_line(bob, "/join #den")
    hub.handle_line(alice, "/topic all welcome")
    assert "alice set the topic: all welcome" in b.texts(Kind.SYSTEM)
    hub.moderation.mute(Mute("fingerprint:SHA256:alice-key", None, "", "op", clock()))

    hub.handle_line(alice, "/topic buy cheap pills")
    assert a.notices[-1] == "you cannot set the topic while muted"
    hub.handle_line(alice, "/kick bob buy cheap pills")
    assert a.notices[-1] == "you cannot give a reason for a kick while muted"
    assert "#den" in bob.rooms
    hub.handle_line(alice, "/away buy cheap pills")
    assert a.notices[-1] == "you cannot leave an away note while muted"
    hub.handle_line(bob, "/msg alice hello?")
    assert hub.room("#den").info.topic == "all welcome"  # type: ignore[union-attr]
    heard = [m.text for m in b.messages + reader.messages] + b.notices + reader.notices
    assert not any("pills" in text for text in heard)

    hub.handle_line(alice, "/kick bob")
    assert "you were removed from #den by alice" in b.notices
    assert "#den" not in bob.rooms


def test_an_unknown_command_is_named_unknown_whatever_its_length(clock: Clock) -> None:
    """Not "message too long": a command word is not a message. The name
    is repeated cut short and cleaned."""
    hub, _ = make_hub(clock, max_message_chars=10)
    alice, a = person(hub, "alice")
    for line in ("/" + "x" * 5000, "/\x1b[31m" + "y" * 40 + " and some words", "/zz" + " word" * 1000):
        hub.handle_line(alice, line)
    assert a.notices[-3:] == [
        f"unknown command /{'x' * 32}; type /help for the list",
        f"unknown command /{'y' * 32}; type /help for the list",
        "unknown command /zz; type /help for the list",
    ]


def test_a_message_the_store_could_not_keep_is_refused_once_to_a_bot() -> None:
    """Through its outcome, as every other refusal, and not also as a notice
    (which a bot prints on stderr too: it would read the refusal twice)."""
    store = MemoryStore()
    hub = Hub(store, chat_settings())
    bot = Bot(hub, "bot")
    store.fail_next = True
    assert bot.post("lost") == "your message could not be saved (storage error), so nobody got it; please try again"
    assert bot.outlet.notices == []
    someone, out = person(hub, "someone")
    store.fail_next = True
    hub.handle_line(someone, "lost too")  # a person, who gave no outcome to hear it: a notice
    assert out.notices[-1].startswith("your message could not be saved")


def test_a_line_far_over_the_limit_is_refused_before_it_is_cleaned(clock: Clock, monkeypatch) -> None:
    """Cleaning looks at every character: a line more than four times the
    limit is refused as it is, so what a refused line costs is bounded by
    the limit (even one that would have cleaned down to a few letters)."""
    import sshchat.chat.pipeline as pipeline

    hub, reader = make_hub(clock, max_message_chars=10)
    alice, a = person(hub, "alice", "SHA256:alice-key")
    cleaned: list[int] = []
    real_clean = pipeline.clean
    monkeypatch.setattr(pipeline, "clean", lambda text: cleaned.append(len(text)) or real_clean(text))
    escapes = "hi" + "\x1b[0m" * 10  # 42 characters that clean down to "hi"
    hub.handle_line(alice, escapes)
    assert a.notices[-1] == "message too long (42 characters, at most 10); not sent"
    assert Bot(hub, "bot").post(escapes) == "message too long (42 characters, at most 10); not sent"
    hub.handle_line(alice, "/join #den")  # made by alice's key: she may set its topic
    hub.handle_line(alice, "/topic " + escapes)
    assert a.notices[-1] == "text too long (42 characters, at most 10); not done"
    assert cleaned == [] and reader.texts(Kind.CHAT) == []
    hub.handle_line(alice, "/join #lobby")
    hub.handle_line(alice, "hi" + "\x1b[0m" * 9)  # 38: within four times the limit, cleaned, and short enough
    assert reader.texts(Kind.CHAT) == ["hi"] and cleaned == [38]


def test_a_commit_whose_outcome_is_unknown_is_not_called_lost() -> None:
    """The database lost touch as it committed (PostgreSQL: the answer lost,
    and asking again failed): the line may be kept, and shown later to all."""
    from sshchat.chat.store import Committed, Draft, OutcomeUnknown

    class LosingAnswers(MemoryStore):
        def append(self, drafts: list[Draft], done: Committed) -> None:
            done(OutcomeUnknown("the connection was lost as it committed"))

    hub = Hub(LosingAnswers(), chat_settings())
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "maybe kept")
    assert a.notices[-1].startswith("the database stopped answering as your message was saved: if it was kept")
    assert "nobody got it" not in a.notices[-1]
