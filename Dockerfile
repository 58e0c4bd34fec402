# letzflow: one image for the worker, beat, Flower and the simulator (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so editing the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p config letzai/sim tasks workers storage \
    && touch config/__init__.py letzai/__init__.py letzai/sim/__init__.py tasks/__init__.py \
       workers/__init__.py storage/__init__.py \
    && pip install ".[postgres]" \
    && pip uninstall -y letzflow

COPY config ./config
COPY letzai ./letzai
COPY letzflow ./letzflow
COPY tasks ./tasks
COPY workers ./workers
COPY storage ./storage
COPY examples ./examples
RUN pip install --no-deps ".[postgres]" \
    && useradd --create-home --uid 10001 letzflow \
    && mkdir -p /var/lib/letzflow \
    && chown letzflow:letzflow /var/lib/letzflow

USER letzflow
# Run from a folder without the sources so the installed package is what gets imported; examples stay at
# /app/examples for `letzflow run /app/examples/catalog.yaml`.
WORKDIR /var/lib/letzflow
CMD ["celery", "-A", "workers.app", "worker", "-Q", "submit,poll,media,batch", "--loglevel", "INFO"]
