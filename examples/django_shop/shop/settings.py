"""Settings of the example shop: Django keeps its orders in its own database, siyu in its own."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SHOP_DATA_DIR", BASE_DIR))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "siyu.contrib.django",
    "shop",
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "django.sqlite3"}}

# siyu: its own database (here a SQLite file; postgresql://… in production), one workspace per process.
SIYU = {
    "url": os.environ.get("SIYU_URL", f"sqlite:///{DATA / 'siyu.sqlite3'}"),
    "secret_key": os.environ.get("SIYU_SECRET_KEY"),
}
