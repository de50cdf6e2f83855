"""The data room: splits (in memory or read lazily), and one source per format (``audit.data.sources``)."""
