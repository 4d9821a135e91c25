"""Build the optional compiled parts; everything else is declared in pyproject.toml.

``owmanifest.manifest._hashcore`` is the hashing engine's inner loop (no OpenSSL headers: it
finds OpenSSL's digests through hashlib's own ``_hashlib`` at run time; ADR 0007);
``owmanifest.manifest._nqindex`` is the verifier's one pass over a manifest's statements
(ADR 0008). Both are optional: where no C compiler is available the build skips them and
owmanifest runs in pure Python, with the same results, more slowly (``owmanifest --version``
says which parts run compiled).
"""

import os

from setuptools import Extension, setup

ext_modules = []
if os.name == "posix" and not os.environ.get("OWMANIFEST_NO_EXTENSION"):
    ext_modules = [
        Extension(
            f"owmanifest.manifest.{name}",
            [f"owmanifest/manifest/{name}.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
        for name in ("_hashcore", "_nqindex")
    ]

setup(ext_modules=ext_modules)
