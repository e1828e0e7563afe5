FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY service ./service
COPY providers ./providers
COPY cache ./cache
# The versions the test suite passed with; uvloop (the speed extra) is used when present.
RUN pip install --no-cache-dir -c constraints.txt '.[speed]' && useradd --system --uid 10001 sidebar
USER sidebar

EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"
CMD ["sidebar-widgets", "serve", "--host", "0.0.0.0", "--port", "8080"]
