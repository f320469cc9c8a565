# Production image: the web server by default; the same image runs the Celery worker and beat (docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=neena.settings.production

WORKDIR /app
RUN groupadd --system neena \
    && useradd --system --gid neena --home-dir /app --no-create-home --shell /usr/sbin/nologin neena

# Runtime dependencies only (no test or lint tools); a layer of its own so code changes don't reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# /var/lib/neena-metrics: where docker-compose.yml mounts the Prometheus multiprocess volume; a new volume takes the
# owner of the directory it is mounted on, so it is made here, writable by the app's user.
# Static files (admin, Swagger UI and ReDoc assets) are collected into the image and served by ServeStatic.
# The production settings refuse to load without real-looking secrets, so generate throwaway ones that live only in
# this RUN step (they are not ENV, so they are not in the image); the real ones come from the environment at run time.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DJANGO_ALLOWED_HOSTS=localhost \
    NEENA_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    python manage.py collectstatic --noinput \
    && mkdir -p var /var/lib/neena-metrics \
    && chown neena:neena var /var/lib/neena-metrics

USER neena
EXPOSE 8000
CMD ["gunicorn", "neena.asgi:application", "--config", "gunicorn.conf.py"]
