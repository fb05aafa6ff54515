"""Identity resolution: which records are one person, and which persons one household.

The stage between staging and the marts. Deterministic rules first (the same tax-id hash; the same
normalised e-mail plus birth date), then a Splink model (DuckDB backend) over names, birth date,
address, e-mail and phone, trained by expectation maximisation with u from random sampling. Pairs
above the accept threshold join one cluster; pairs between the review and accept thresholds go to a
clerical review queue with their evidence. Cluster ids are stable across runs: a cluster keeps the
id its members already had.

Modules: ``records`` (load and normalise input, count what is unusable), ``model`` (the Splink
settings, training, prediction), ``clusters`` (connected components, stable ids, merges and splits),
``evaluation`` (pairwise and cluster metrics against a truth), ``link`` (the whole run), and the CLI
``python -m identity link``.
"""
