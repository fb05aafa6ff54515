"""FIX 4.4 / 4.2 / 5.0 SP2 drop copies: the vectorised parser/validator.

The data dictionaries it validates against (from QuickFIX) are :mod:`connectors.fix`, shared with the landing gate.
"""
