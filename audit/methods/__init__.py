"""The methods room: the algorithms checks call (evaluation, calibration, corruptions, statistics of the data
detectors, leakage, backdoor screening, the ART adapter). Functions of arrays and models; no context."""
