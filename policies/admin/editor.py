"""The add/change page shared by profiles and compliance policies.

One page holds the object's own form, any formsets of its own (a policy's action schedule) and the
assignments editor. "Preview" validates everything and shows who would receive it, saving nothing;
"Save" validates everything and hands it to the object's service in one call, so either all of it
is written or none of it. A person who may only view gets the same page with every input disabled,
and any POST from them is refused.
"""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from mdm_portal.core.admin_base import AuthzModelAdmin

from .assignments import Preview, assignment_formset, assignments_preview


class EditorAdmin(AuthzModelAdmin):
    """A ModelAdmin whose add/change page is the editor above; subclasses say what the object is."""

    editor_template = "admin/policies/editor.html"
    delete_template = "admin/policies/delete_confirmation.html"
    # POST fields masked in Django's error reports (secrets).
    sensitive_fields: tuple[str, ...] = ()

    # What a subclass provides -----------------------------------------------------------------

    def editor_form(self, request, obj, data, *, disabled: bool) -> forms.Form:
        raise NotImplementedError

    def editor_fieldsets(self, form) -> list[tuple[str, str, list[str]]]:
        """``[(title, description, field names)]``."""
        raise NotImplementedError

    def editor_proposed(self, form, obj):
        """An unsaved instance with the scope and platforms the page proposes (for targeting)."""
        raise NotImplementedError

    def editor_formsets(self, request, obj, data, *, disabled: bool) -> dict[str, forms.BaseFormSet]:
        return {}

    def editor_save(self, request, obj, form, formsets: dict, rows: list[dict]) -> Any:
        raise NotImplementedError

    def editor_context(self, request, obj, form) -> dict:
        return {}

    def editor_add_prelude(self, request):
        """A response to show before the add form (a choice to make first), or None."""
        return None

    def editor_delete(self, request, obj) -> str:
        """Delete through the service; return the sentence to show."""
        raise NotImplementedError

    def delete_consequences(self, obj) -> list[str]:
        return []

    def editor_assignments(self, request, *, data, obj, proposed_obj, disabled: bool):
        """The assignments formset; a subclass whose rows differ (an app's intent) gives its own."""
        return assignment_formset(request, data=data, obj=obj, proposed_obj=proposed_obj, disabled=disabled)

    def editor_preview(self, request, proposed_obj, assignments):
        """What saving the proposed rows would do, shown by "Preview"."""
        return assignments_preview(user=request.user, obj=proposed_obj, proposed=assignments.proposed())

    # The page ------------------------------------------------------------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if self.sensitive_fields:
            request.sensitive_post_parameters = list(self.sensitive_fields)
        add = object_id is None
        if add:
            if not self.has_add_permission(request):
                raise PermissionDenied
            obj = None
            prelude = self.editor_add_prelude(request)
            if prelude is not None:
                return prelude
            can_edit = True
        else:
            obj = self.get_object(request, unquote(object_id))  # 403 without the model, 404 out of scope
            can_edit = self.has_change_permission(request, obj)
        posted = request.method == "POST"
        if posted and not can_edit:
            raise PermissionDenied
        data = request.POST if posted else None

        form = self.editor_form(request, obj, data, disabled=not can_edit)
        form_valid = form.is_valid() if posted else False
        proposed_obj = self.editor_proposed(form, obj)
        assignments = self.editor_assignments(
            request, data=data, obj=obj, proposed_obj=proposed_obj, disabled=not can_edit
        )
        formsets = self.editor_formsets(request, obj, data, disabled=not can_edit)
        preview: Preview | Any = None

        if posted:
            valid = all([form_valid, assignments.is_valid(), *[f.is_valid() for f in formsets.values()]])
            if not valid:
                self.message_user(request, "Please correct the errors below; nothing was saved.", messages.ERROR)
            elif "_preview" in request.POST:
                preview = self.editor_preview(request, proposed_obj, assignments)
            else:
                try:
                    saved = self.editor_save(request, obj, form, formsets, assignments.rows())
                except ValidationError as exc:
                    self._errors_onto(exc, form, assignments, formsets)
                    self.message_user(request, "Please correct the errors below; nothing was saved.", messages.ERROR)
                else:
                    return self._saved(request, saved, add)

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": (f"Add {self.opts.verbose_name}" if add else str(obj)),
            "subtitle": None,
            "original": obj,
            "add": add,
            "change": not add,
            "can_edit": can_edit,
            "has_delete_permission": obj is not None and self.has_delete_permission(request, obj),
            "form": form,
            "adminform": helpers.AdminForm(
                form,
                [
                    (title, {"fields": [n for n in names if n in form.fields], "description": description})
                    for title, description, names in self.editor_fieldsets(form)
                ],
                prepopulated_fields={},
                model_admin=self,
            ),
            "formsets": formsets,
            "assignments": assignments,
            "preview": preview,
            "media": self.media + form.media + assignments.media,
            "is_popup": False,
            "history_url": (
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_history", args=[obj.pk]) if obj else None
            ),
            "delete_url": (
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_delete", args=[obj.pk]) if obj else None
            ),
            "changelist_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"),
            **self.editor_context(request, obj, form),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.editor_template, context)

    def _saved(self, request, obj, add: bool):
        if add:
            self.log_addition(request, obj, [{"added": {}}])
        else:
            self.log_change(request, obj, [{"changed": {}}])
        self.message_user(
            request,
            f"The {self.opts.verbose_name} “{obj}” was saved. Targeted devices are being brought up to date.",
            messages.SUCCESS,
        )
        if "_continue" in request.POST or not self.has_view_or_change_permission(request):
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
            )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    @staticmethod
    def _errors_onto(exc: ValidationError, form, assignments, formsets: dict) -> None:
        """Put a service's errors next to what they are about."""
        if not hasattr(exc, "error_dict"):
            form.add_error(None, exc.messages)
            return
        for key, sentences in exc.message_dict.items():
            if key == "assignments":
                assignments._non_form_errors = assignments.error_class(
                    [*assignments.non_form_errors(), *sentences], error_class="nonform"
                )
            elif key in formsets:
                formset = formsets[key]
                formset._non_form_errors = formset.error_class(
                    [*formset.non_form_errors(), *sentences], error_class="nonform"
                )
            elif key in form.fields:
                form.add_error(key, sentences)
            elif f"setting_{key}" in form.fields:
                form.add_error(f"setting_{key}", sentences)
            else:
                form.add_error(None, sentences)

    # Delete ----------------------------------------------------------------------------------------

    def delete_view(self, request, object_id, extra_context=None):
        """A confirmation page that says what deleting does; the service deletes and audits."""
        obj = self.get_object(request, unquote(object_id))
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        if request.method == "POST" and request.POST.get("post") == "yes":
            try:
                sentence = self.editor_delete(request, obj)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return HttpResponseRedirect(change_url)
            self.message_user(request, sentence, messages.SUCCESS)
            return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Delete {self.opts.verbose_name} “{obj}”?",
            "object": obj,
            "change_url": change_url,
            "consequences": self.delete_consequences(obj),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.delete_template, context)


def proposed_copy(obj, model, **values):
    """``obj`` (or a new ``model``) with ``values`` set, never saved: what the page proposes."""
    proposed = copy.copy(obj) if obj is not None else model()
    for name, value in values.items():
        setattr(proposed, name, value)
    return proposed
