"""A plugin module that cannot be imported (a missing dependency)."""

import owmanifest_toy_transport_missing_dependency  # type: ignore[import-not-found]  # noqa: F401
