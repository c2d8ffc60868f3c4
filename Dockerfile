# One image for every process; the command picks the process (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY services ./services
COPY scripts ./scripts
COPY alembic ./alembic
COPY alembic.ini ./
RUN pip install . && useradd --system --uid 10001 motcua && mkdir -p /data/files && chown motcua /data/files
USER motcua
EXPOSE 8000
CMD ["uvicorn", "--factory", "gateway.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
