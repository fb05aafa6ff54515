-- MLflow keeps its tracking store beside Airflow's metadata, in its own database.
CREATE DATABASE mlflow OWNER airflow;
