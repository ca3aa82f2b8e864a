"""sshchat: a chat server that people reach with the SSH client they already have."""

__version__ = "0.1.0"
