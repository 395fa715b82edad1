"""Third-party extensions used by the tests, enabled through settings only."""
