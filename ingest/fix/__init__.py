"""FIX 4.4 / 4.2 drop copies: the data dictionaries (from QuickFIX) and the vectorised parser/validator."""
