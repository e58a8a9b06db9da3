from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_roles(sender, using="default", **kwargs):
    """The roles come from migration 0002; this puts them back after a database flush (which
    re-emits post_migrate but not data migrations), e.g. between transactional tests."""
    # models cannot be imported when apps.py is (before the app registry is ready)
    from django.contrib.auth.models import Group

    from staff.models import Role

    for role in Role:
        Group.objects.using(using).get_or_create(name=role.value)


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = "Staff, roles and audit"

    def ready(self):
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="staff.ensure_roles")
        # models (auth's, staff's) load only once the app registry is ready, hence here
        from staff import audit_hooks

        audit_hooks.connect()  # who may do what, and sign-ins, audited on every path
