"""Staff screens: login, audit log, and the access helpers every screen uses.

Access is checked here in the view (anonymous users never get this far: the login-required
middleware sends them to the login page) and again in each service a view calls.
"""

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import wraps

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import render
from django.utils.decorators import method_decorator

from core.forms import DATE_INPUT_FORMATS, DateInputGB
from core.paging import keyset_page
from staff import selectors
from staff.company_scope import company_scope, visible_scope
from staff.forms import ThrottledAuthenticationForm
from staff.models import Role
from staff.services import user_has_role


def role_required(role: Role):
    """Let the view run only for users with the role (admins and approvers inherit down)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not user_has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role.label} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


clerk_required = role_required(Role.CLERK)
approver_required = role_required(Role.APPROVER)


def get_or_404(queryset, **lookup):
    """The object, or a 404 page (never a stack trace) when it does not exist."""
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches.") from None


class AuditFilterForm(forms.Form):
    q = forms.CharField(label="Search action or summary", required=False, max_length=200)
    user = forms.CharField(label="User", required=False, max_length=150)
    object_type = forms.CharField(label="Object type", required=False, max_length=60)
    object_id = forms.CharField(label="Object id", required=False, max_length=64)
    date_from = forms.DateField(
        label="From", required=False, widget=DateInputGB(), input_formats=DATE_INPUT_FORMATS
    )
    date_to = forms.DateField(
        label="To", required=False, widget=DateInputGB(), input_formats=DATE_INPUT_FORMATS
    )


@dataclass
class Outcome:
    """What a service call did, in words a person can act on."""

    ok: bool
    message: str = ""
    value: object = None
    field_errors: dict = dataclass_field(default_factory=dict)


def _message(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or error.__class__.__name__


def run_service(service, *, refusals: tuple = (), **kwargs) -> Outcome:
    """Call a service and turn its refusals (permission, validation) into an Outcome.

    `refusals` names a service's own exception classes that mean "not now" rather than a bug.
    Unexpected errors still propagate: they are bugs, logged, and the user sees the 500 page
    while the service's transaction leaves nothing half-written.
    """
    try:
        return Outcome(True, value=service(**kwargs))
    except PermissionDenied as error:
        return Outcome(False, _message(error) or "You are not allowed to do this.")
    except ValidationError as error:
        fields = error.message_dict if hasattr(error, "error_dict") else {}
        return Outcome(False, _message(error), field_errors=fields)
    except (ValueError, *refusals) as error:  # MoneyError, the services' own refusals
        return Outcome(False, _message(error))


@method_decorator(login_not_required, name="dispatch")
@method_decorator(transaction.atomic, name="dispatch")  # last_login and its audit row together
class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True


@clerk_required
def audit_log_view(request):
    form = AuditFilterForm(request.GET or None)
    # a person granted some companies sees their entries only (never installation-wide
    # ones, which may name any company); the header's choice or ?company= narrows further
    entries = company_scope(visible_scope(selectors.audit_entries(), request), request)
    if form.is_valid():
        entries = selectors.audit_filter(entries, **form.cleaned_data)
    page = keyset_page(entries, order=("at", "id"), after=request.GET.get("after"), size=50)
    template = "staff/_audit_rows.html" if request.htmx else "staff/audit.html"
    return render(request, template, {"form": form, "page": page})
