"""Plugins: the loader (entry points of the group ``sshchat.plugins``, or
``module:attr``) and the two that ship with sshchat, ``dice`` and
``wordfilter``. The API they are written against is ``sshchat.chat.plugins``;
the host that runs them is ``sshchat.chat.plugin_host``.
"""
