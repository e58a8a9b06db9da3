"""Create the demo logins (one per role) and print them. Development mode only."""

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

DEMO_USERS = [
    # username, role, password: printed on start-up, so they are not secrets
    ("clerk", "clerk", "clerk-demo-2026"),
    ("clerk2", "clerk", "clerk2-demo-2026"),
    # a clerk of the Irish company only (seed_demo grants the company): sees none of the UK's
    ("clerk-ie", "clerk", "clerk-ie-demo-2026"),
    ("approver", "approver", "approver-demo-2026"),
    ("admin", "admin", "admin-demo-2026"),
]


class Command(BaseCommand):
    help = "Create demo users for each role and print their logins (development only)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("Demo users are never created in production mode.")
        rows = []
        with transaction.atomic():
            for username, role, password in DEMO_USERS:
                user, created = User.objects.get_or_create(username=username)
                if created:
                    user.set_password(password)
                    user.is_staff = role == "admin"
                    user.is_superuser = role == "admin"
                    user.save()
                    user.groups.add(Group.objects.get(name=role))  # audited: staff/audit_hooks.py
                rows.append((username, role, password))
        self.stdout.write("Demo logins (development only):")
        for username, role, password in rows:
            self.stdout.write(f"  {role:<9} username: {username:<9} password: {password}")
