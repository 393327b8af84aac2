"""A package, so functions in it are addressed as ``callpkg.tasks:FUNC``."""
