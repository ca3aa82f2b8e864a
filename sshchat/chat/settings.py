"""The settings the chat core reads.

No defaults here, on purpose: every value comes from the server's Config
(``sshchat.config.chat_settings``), the one place a default is written. A
setting renamed there fails loudly (mypy, and the test that sets each field
through Config) instead of quietly falling back to a second copy of its
default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What the chat core needs of the configuration; see Config for each."""

    server_name: str  # in the welcome line
    max_message_chars: int
    rate_burst: int  # messages (and commands) at once...
    rate_per_second: float  # ...then this many per second
    history_on_join: int
    history_per_call: int  # most messages one /history shows
    history_in_memory: int  # per room, for joins without a disk read
    offence_threshold: int
    offence_window: float
    offence_block: float
    idle_away: float  # 0: never
    idle_kick: float  # 0: never
    max_rooms: int
    max_rooms_per_person: int
    max_rooms_joined: int  # rooms one person may be in at once
    max_rooms_per_address: int  # rooms keyless people at one address (IPv6: one /64) may have made
    keyless_room_share: float  # keyless people may make rooms up to this share of max_rooms
    keyless_room_ttl: float  # a keyless person's room empty this long is removed
    max_keyed_rooms_per_address: int  # rooms made with a key from one address (IPv6: one /64)
    room_reserve: float  # the last this share of max_rooms: one room per address
    names_per_key: int  # names one key may hold registered
    names_per_address_per_hour: int  # names one address may register an hour (new keys cost nothing)
    # Comings and goings beyond this many per room within notice_window
    # seconds are summed up in one line at the next tick(): a login storm
    # must not cost a write to every member per login.
    notice_burst: int
    notice_window: float
