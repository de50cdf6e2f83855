"""The evidence room: writing an output directory atomically, the evidence bundle, its manifest and signing."""
