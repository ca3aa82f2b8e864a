"""The chat domain: pure Python, no sockets, no asyncssh, no storage engine.

The transport (sshchat.ssh) feeds it lines and gives it an Outlet per person;
everything here can be tested by calling it.
"""
