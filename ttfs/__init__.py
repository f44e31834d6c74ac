"""Command line (`ttfs ...`) and config schema of ttfs-codesign."""
