"""Northstar: shared plumbing for the pipeline's stages (settings, Airflow environment, setup).

How the folders may depend on each other (checked by ``tests/foundation/test_stage_imports.py``):

* **Stages** (``ingest``, ``expectations``, ``ml``, ``activate``, ``dashboard``, later ``identity``) never
  import each other. Data moves between them through files (the landing folder and its manifest) and
  warehouse tables; what two stages must agree on lives below them: ``connectors/`` (the Salesforce,
  ServiceNow and FIX contracts and clients, with retry and call counting) and ``northstar/`` (settings, the
  warehouse seam, the model registry's names and reads in ``northstar.model_registry``).
* **A business rule has one owner**, the stage that applies it (the incident priority is ``activate``'s);
  another stage reads what it wrote, not its code.
* **``northstar/``** imports a stage only in a module that wires stages together: ``demo`` (sandbox, DAGs),
  ``bootstrap`` (the sandbox's credentials into Airflow connections), ``ui`` (serves the dashboard). Anything
  else here (``recon``, ``dbt``, ``warehouse``, ...) reads stage output as files and tables like a stage does.
* **``connectors/``** and ``sandbox/`` (the stand-ins) import no stage.
* ``dags/``, ``tests/`` and ``bench/`` wire or exercise everything and may import anything.
"""
