# Airflow image with the ai-usage package and its locked dependencies (used by docker-compose.yaml; on Cloud
# Composer install requirements.txt as PyPI packages and upload dags/, plugins/ and include/ instead).
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt /opt/ai-usage/requirements.txt
RUN pip install --no-cache-dir -r /opt/ai-usage/requirements.txt

COPY --chown=airflow:root pyproject.toml README.md /opt/ai-usage/
COPY --chown=airflow:root plugins /opt/ai-usage/plugins
RUN pip install --no-cache-dir --no-deps /opt/ai-usage
