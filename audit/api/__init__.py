"""The top room: running an audit end to end and writing its outputs, shared by the CLI and the Python API."""
