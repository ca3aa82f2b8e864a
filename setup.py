"""The one compiled part: sshchat/ssh/_wire.c (see its header and
ssh/fastpath.py). It is optional: without a C compiler or OpenSSL's headers
the build goes on without it and the server uses the same path in Python."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sshchat.ssh._wire",
            ["sshchat/ssh/_wire.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
