"""API clients in the admin: made through api_client_create (the token is shown once, in the
message after saving), revoked through api_client_revoke; never edited or deleted in place."""

from django import forms
from django.contrib import admin, messages

from api.models import ApiClient, IdempotencyKey
from api.services import api_client_create, api_client_revoke
from ledger.models import Entity
from staff.admin_base import ViewOnlyAdmin
from staff.models import Role


class NewClientForm(forms.ModelForm):
    role = forms.ChoiceField(choices=[(Role.CLERK, "Clerk"), (Role.APPROVER, "Approver")])

    class Meta:
        model = ApiClient
        fields = ["name", "entity", "scope"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "entity", "scope", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_prefix", "user", "created_by", "created_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = NewClientForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "entity", "scope", "role"]
        return ["name", "entity", "scope", *self.readonly_fields]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        client, token = api_client_create(
            actor=request.user,
            name=form.cleaned_data["name"],
            entity=form.cleaned_data["entity"] or Entity.objects.first(),
            scope=form.cleaned_data["scope"],
            role=form.cleaned_data["role"],
        )
        obj.pk = client.pk
        messages.warning(request, f"The token of {client.name}, shown this once: {token}")

    @admin.action(description="Revoke the selected clients' tokens")
    def revoke(self, request, queryset):
        for client in queryset:
            api_client_revoke(actor=request.user, client=client)
        self.message_user(request, f"{queryset.count()} client(s) revoked.")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ViewOnlyAdmin):
    """Answers kept for replays of the same Idempotency-Key: written by the API only."""

    list_display = ["client", "key", "response_status", "created_at"]
    list_filter = ["client"]
    search_fields = ["key"]
