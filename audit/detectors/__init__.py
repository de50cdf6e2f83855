"""Data detectors shared by the data checks and their self-tests (the self-test runs the very same functions on a
copy of the data with known injected problems)."""
