"""Load generator and measurements for sshchat (and any SSH chat server).

``python -m bench.loadgen --help``. It lives outside the ``sshchat`` package
on purpose: it is a client like any other, talks to the server only over
SSH, and reads the server's CPU and memory from /proc, so the same run can
measure another server (e.g. ssh-chat) by attaching to it.
"""
