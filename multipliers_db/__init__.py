"""Committed characterization data: ``<name>/lut.npy`` + ``<name>/record.json``.

Generated from ``rtl/`` by ``axhw add`` / ``axhw characterize``; never edit by hand.
"""
