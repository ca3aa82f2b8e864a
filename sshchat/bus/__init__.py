"""Fan-out between processes: in-process (the default) and Redis Streams.

The chat core's side of it (events, the Bus protocol) is ``sshchat.chat.bus``.
"""
