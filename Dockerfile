# The production shape: the app alone; PostgreSQL and Redis come from docker-compose
# (DATABASE_URL / REDIS_URL set, so nothing embedded starts).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kernel kernel
COPY fooddispatch fooddispatch
COPY geo geo
COPY catalog catalog
COPY orders orders
COPY payments payments
COPY tracking tracking
COPY dispatch dispatch
COPY memberships memberships
RUN pip install --no-cache-dir .
RUN useradd --create-home fooddispatch
USER fooddispatch
ENV FOODDISPATCH_HOST=0.0.0.0 FOODDISPATCH_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz').status == 200 else 1)"
CMD ["fooddispatch", "serve"]
