"""The engine room: configuration loading against the registries, the pipeline, the context and its shared
intermediate results, judging, pre-flight checks, assembling the result, and comparing two results."""
