"""Build the optional compiled hashing core; everything else is declared in pyproject.toml.

``owmanifest.manifest._hashcore`` is a small C extension (no OpenSSL headers: it finds
OpenSSL's digests through hashlib's own ``_hashlib`` at run time). It is optional: where no C
compiler is available the build skips it and owmanifest hashes in pure Python, with the same
results, more slowly (``owmanifest version`` says which engine runs).
"""

import os

from setuptools import Extension, setup

ext_modules = []
if os.name == "posix" and not os.environ.get("OWMANIFEST_NO_EXTENSION"):
    ext_modules.append(
        Extension(
            "owmanifest.manifest._hashcore",
            ["owmanifest/manifest/_hashcore.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
