#!/usr/bin/env python
"""The Django shop example's manage.py: ``python manage.py migrate``, ``runserver``, ``test shop``,
``siyu_worker``, ``siyu_run_due``."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
