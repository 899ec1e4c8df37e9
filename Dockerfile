# prombot: one image for the web app (gunicorn), the scheduler, migrations and fake-twilio.
# docker-compose.yml says which command each service runs; tests/test_deployment_files.py
# checks this file and that one.

# 1. Front-end assets (nhsuk-frontend, htmx, ...) from the repository's package-lock.json.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# 2. prombot and its Python dependencies, in a virtual environment of their own.
FROM python:3.11-slim AS python
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY scheduler ./scheduler
RUN /opt/venv/bin/pip install .

# 3. What runs: the virtual environment and the assets, as a user without privileges.
FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PROMBOT_LOG_FORMAT=json \
    PROMBOT_INSTANCE=/app/instance
WORKDIR /app
COPY --from=python /opt/venv /opt/venv
COPY --from=assets /build/node_modules /app/node_modules
RUN useradd --create-home --uid 10001 prombot \
    && mkdir -p /app/instance \
    && chown prombot /app/instance
USER prombot
EXPOSE 5000
# Workers, timeouts and the access log: bot/gunicorn_conf.py.
CMD ["gunicorn", "--config", "python:bot.gunicorn_conf"]
