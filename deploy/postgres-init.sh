#!/bin/sh
# Roles and databases for Airflow's metadata and MLflow's tracking store, each with its own password
# (from .env). The postgres image runs this once, on an empty data volume; `python -m northstar stack`
# runs the same script against its local cluster. Connection settings come from PG* variables.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc -v airflow_password="$AIRFLOW_DB_PASSWORD" -v mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL'
create role airflow login password :'airflow_password';
create role mlflow login password :'mlflow_password';
create database airflow owner airflow;
create database mlflow owner mlflow;
SQL
