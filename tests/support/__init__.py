"""Test helpers shared by every plane's tests (importable as `tests.support`)."""
