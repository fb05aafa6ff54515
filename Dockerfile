# One image for every Northstar service (Airflow components, MLflow, the sandbox, dbt docs).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/northstar/.venv \
    PATH=/opt/northstar/.venv/bin:$PATH \
    NORTHSTAR_HOME=/var/lib/northstar \
    AIRFLOW_HOME=/opt/airflow \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    NUMBA_CACHE_DIR=/var/lib/northstar/numba-cache \
    OMP_WAIT_POLICY=PASSIVE

RUN pip install --no-cache-dir uv && useradd --create-home --uid 50000 northstar
WORKDIR /opt/northstar
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra deploy --no-install-project
COPY . .
# AIRFLOW_HOME (/opt/airflow: airflow.cfg, logs, the auth volume) and the data volume belong to the
# image's user; named volumes mounted there start with this ownership.
RUN uv sync --frozen --no-dev --extra deploy \
    && mkdir -p /var/lib/northstar/mlflow /var/lib/northstar/numba-cache /opt/airflow/logs /opt/airflow/auth \
    && chown -R northstar /var/lib/northstar /opt/airflow
USER northstar
