"""Everything that touches asyncssh: authentication, limits, sessions."""
