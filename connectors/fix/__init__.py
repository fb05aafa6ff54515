"""The FIX protocol's data dictionaries (FIX 4.2, 4.4 and 5.0 SP2 over FIXT.1.1, derived from QuickFIX).

The standard the brokers' drop copies are written in, shared by the two stages that judge them: the parser
in ``ingest/fix`` validates every message against it, and the landing gate in ``expectations`` checks the
landed table against the same required tags and value sets. See :mod:`connectors.fix.dictionary`.
"""
