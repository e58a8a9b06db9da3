from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.db import transaction

from staff.login_throttle import (
    client_ip,
    login_attempts_serialised,
    login_failed,
    login_locked_until,
    login_succeeded,
)
from staff.signals import login_locked_out


class ReasonForm(forms.Form):
    """Why a person rejects, cancels or retries something (every app's screens ask it)."""

    reason = forms.CharField(
        label="Reason", max_length=1000, widget=forms.Textarea({"rows": 2}), strip=True
    )


class ThrottledAuthenticationForm(AuthenticationForm):
    """The stock login form, refusing further attempts after repeated failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed attempts. Try again in a few minutes.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        with transaction.atomic():
            login_attempts_serialised(username=username)
            try:
                return self._clean_throttled(username)
            except forms.ValidationError as error:
                refused = error  # raised after the counts are committed, not rolled back
        raise refused

    def _clean_throttled(self, username):
        ip = client_ip(self.request)
        if login_locked_until(username=username, ip=ip):
            # refused without trying the password; still a failed sign-in for the audit log
            login_failed(username=username, ip=ip)  # trying while locked lengthens the lock
            user_login_failed.send(
                sender=__name__, credentials={"username": username}, request=self.request
            )
            raise forms.ValidationError(self.error_messages["locked"], code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            until = login_failed(username=username, ip=ip)
            if until:
                login_locked_out.send(sender=type(self), username=username, ip=ip, until=until)
            raise
        login_succeeded(username=username, ip=ip)
        return cleaned
