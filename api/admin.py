"""API clients in the admin: made through api_client_create (the token is shown once, in the
message after saving), revoked through api_client_revoke; never edited or deleted in place."""

from django import forms
from django.contrib import admin, messages

from api.models import (
    ApiClient,
    IdempotencyKey,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from api.services import api_client_create, api_client_revoke
from api.webhooks import (
    EVENT_TYPES,
    webhook_delivery_replay,
    webhook_subscription_create,
    webhook_subscription_disable,
)
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


# --- outgoing webhooks -------------------------------------------------------------------------


class NewSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        help_text="None chosen: every type.",
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookSubscription
        fields = ["client", "url"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Made through webhook_subscription_create (the signing secret is shown once, in the
    message after saving), stopped through webhook_subscription_disable; never edited."""

    list_display = ["client", "url", "event_types", "created_at", "disabled_at"]
    readonly_fields = ["event_types", "created_by", "created_at", "disabled_at"]
    actions = ["disable"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = NewSubscriptionForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["client", "url", "event_types"]
        return ["client", "url", *self.readonly_fields]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        row, secret = webhook_subscription_create(
            actor=request.user,
            client=form.cleaned_data["client"],
            url=form.cleaned_data["url"],
            event_types=list(form.cleaned_data["event_types"]),
        )
        obj.pk = row.pk
        messages.warning(request, f"The signing secret of {row.url}, shown this once: {secret}")

    @admin.action(description="Stop sending events to the selected subscriptions")
    def disable(self, request, queryset):
        for row in queryset:
            webhook_subscription_disable(actor=request.user, subscription=row)
        self.message_user(request, f"{queryset.count()} subscription(s) stopped.")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "at", "status_code", "error", "milliseconds"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ViewOnlyAdmin):
    """The delivery log: each event to each subscription, its attempts; failed ones (or any)
    can be sent again (webhook_delivery_replay, audited)."""

    list_display = [
        "event",
        "subscription",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["state", "subscription"]
    search_fields = ["event__object_id", "event__type"]
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    @admin.action(description="Send the selected deliveries again now")
    def replay(self, request, queryset):
        for row in queryset:
            webhook_delivery_replay(actor=request.user, delivery=row)
        self.message_user(request, f"{queryset.count()} delivery(ies) queued again.")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ViewOnlyAdmin):
    list_display = ["__str__", "entity", "type", "object_id", "created_at"]
    list_filter = ["type"]
    search_fields = ["object_id"]


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ViewOnlyAdmin):
    """Every POST made to a subscriber (also shown under each delivery)."""

    list_display = ["delivery", "number", "at", "status_code", "error", "milliseconds"]
    list_filter = ["status_code"]
