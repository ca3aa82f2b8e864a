"""``--workers N``: several processes of one node accepting on one port.

``supervisor`` is the parent (starts, watches and restarts the workers; does
no chat work); ``link`` is what passes between it and each worker.
"""
