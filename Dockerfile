# prombot: one image for the web app, the scheduler and fake-twilio.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PROMBOT_LOG_FORMAT=json
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY scheduler ./scheduler
RUN pip install .
RUN useradd --create-home prombot && mkdir -p /app/instance && chown prombot /app/instance
USER prombot
EXPOSE 5000
CMD ["prombot", "serve", "--host", "0.0.0.0", "--port", "5000"]
