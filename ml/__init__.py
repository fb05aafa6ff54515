"""The client-value and break-anomaly models: features, training, evaluation, registry, scoring."""

import os

# XGBoost's OpenMP threads spin while they wait for work (libgomp's default, OMP_WAIT_POLICY=ACTIVE).
# On a shared worker (two cores, other DAG tasks, Celery's concurrency) the spinning threads starve each
# other: the small world's 400 CLV rounds took 19.8 s on two threads against 3.8 s on one at load 7, and
# 4.0 s on two threads waiting passively. libgomp reads this when xgboost loads it, so it is set before any
# module here imports xgboost; a value the operator set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
