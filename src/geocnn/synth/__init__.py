"""Synthetic earth data for tests, sample data and pretraining (NumPy only, no torch).

``noise`` makes the noise a field survey has — band-limited in time, correlated across
neighbouring traces, spikes, bad traces and a smooth change of level — so that figures measured
on synthetic data are not flattered by white, independent noise.
"""
