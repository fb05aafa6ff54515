"""Client value: the household CLV (``northstar-clv``) and attrition (``northstar-churn``) models, mirroring
``ml/anomaly/``, one module per step (see ml/README.md):

* ``features`` — which columns of the point-in-time mart ``fct_household_features`` are model inputs, the
  rolling-origin cutoffs (training, holdout, scoring), the lineage of a feature read;
* ``model`` — the two models' hyper-parameters, rows and labels, fit and predict;
* ``evaluate`` — the holdout metrics, the baselines' on the same households, the fairness view, plots,
  the model card;
* ``promote`` — thresholds and checks against ``@champion`` (``ml.registry.promote_if_better``);
* ``train`` — the MLflow run that ties fit, evaluate, register and promote together; ``train_if_due`` is
  the nightly DAG's entry point;
* ``score`` — batch scoring with ``@champion``: CLV, segments (``segments``), drivers, drift, the
  ``scores`` tables;
* ``cli`` — ``python -m ml train``, ``score``, ``drift``.

Nothing is imported here, so ``import ml.client_value.score`` pays only for what scoring needs.
"""
