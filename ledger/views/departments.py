"""BI codes (AIQ's departments) of each company: the analysis set-up, every code with its
analysis codes and state, and an approver's rename / retire / activate (written to AIQ through
the outbox, shown as "on its way to AIQ" until AIQ confirms it)."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ledger.companies import entities_for
from ledger.departments import (
    department_change,
    department_change_pending,
    departments_under_analysis_code,
)
from ledger.models import AnalysisDimension, Department, Entity
from staff.company_scope import company_scope, visible_scope
from staff.views import approver_required, clerk_required, get_or_404, run_service


class DepartmentFilter(forms.Form):
    entity = forms.ModelChoiceField(
        Entity.objects.order_by("name"), required=False, label="Company"
    )
    code = forms.CharField(required=False, max_length=50, label="Analysis code")
    state = forms.ChoiceField(
        choices=[("", "All"), ("active", "Active"), ("retired", "Retired")], required=False
    )


class DepartmentChangeForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name")
    action = forms.ChoiceField(
        choices=[("rename", "Rename"), ("retire", "Retire"), ("activate", "Activate")]
    )


@clerk_required
def department_list(request):
    form = DepartmentFilter(request.GET or None)
    form.fields["entity"].queryset = entities_for(request.user)
    departments = company_scope(
        Department.objects.select_related("entity").order_by("entity__name", "department_id"),
        request,
    )
    dimensions = company_scope(
        AnalysisDimension.objects.select_related("entity").order_by("entity__name", "position"),
        request,
    )
    if form.is_valid():
        if form.cleaned_data["entity"]:
            departments = departments.filter(entity=form.cleaned_data["entity"])
            dimensions = dimensions.filter(entity=form.cleaned_data["entity"])
        entity, code = form.cleaned_data["entity"], form.cleaned_data["code"].strip().upper()
        if entity and code:
            # one company and one analysis code: AIQ's own answer (GetDepartmentsByAnalysisCode)
            answer = departments_under_analysis_code(entity, code)
            if answer.warning:
                messages.warning(request, answer.warning)
            if answer.ids is not None:
                departments = departments.filter(department_id__in=answer.ids)
                code = ""
        if code:
            departments = departments.filter(analysis_codes__icontains=code)
        if form.cleaned_data["state"]:
            departments = departments.filter(active=form.cleaned_data["state"] == "active")
    rows = list(departments[:500])
    for row in rows:
        row.pending = department_change_pending(row)
    return render(
        request,
        "ledger/departments.html",
        {"filter": form, "departments": rows, "dimensions": dimensions},
    )


@require_POST
@approver_required
def department_update(request, department_id):
    department = get_or_404(
        visible_scope(Department.objects.select_related("entity"), request), pk=department_id
    )
    form = DepartmentChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the BI code a name and choose what to do.")
        return redirect("ledger:departments")
    action = form.cleaned_data["action"]
    outcome = run_service(
        department_change,
        department=department,
        actor=request.user,
        name=form.cleaned_data["name"],
        active={"retire": False, "activate": True}.get(action),
    )
    if outcome.ok:
        messages.success(
            request, f"BI code {department.department_id}: the change is on its way to AIQ."
        )
    else:
        messages.error(request, f"BI code {department.department_id}: {outcome.message}")
    return redirect("ledger:departments")
