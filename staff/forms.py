from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from staff.services import login_failed, login_is_locked, login_succeeded
from staff.signals import login_locked_out


class ReasonForm(forms.Form):
    """Why a person rejects, cancels or retries something (every app's screens ask it)."""

    reason = forms.CharField(
        label="Reason", max_length=1000, widget=forms.Textarea({"rows": 2}), strip=True
    )


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request else ""


class ThrottledAuthenticationForm(AuthenticationForm):
    """The stock login form, refusing further attempts after repeated failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed attempts. Try again in a few minutes.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        if login_is_locked(username=username, ip=ip):
            raise forms.ValidationError(self.error_messages["locked"], code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if login_failed(username=username, ip=ip) == settings.LOGIN_FAILURE_LIMIT:
                login_locked_out.send(sender=type(self), username=username, ip=ip)
            raise
        login_succeeded(username=username, ip=ip)
        return cleaned
