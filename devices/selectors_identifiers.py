"""Reads of corporate identifiers and their CSV imports for a person, restricted by ``core.authz``.

Identifiers carry a scope, so scoped operators see their scopes' ones; imports span scopes and are
seen only by people who hold the permission everywhere.
"""

from __future__ import annotations

from django.db.models import QuerySet

from mdm_portal.core import authz

from .models import CorporateIdentifier, IdentifierImport


def corporate_identifier_list(
    *, user, action: str = "devices.view_corporateidentifier"
) -> QuerySet[CorporateIdentifier]:
    """Identifiers ``user`` may perform ``action`` on, with what list pages show joined in."""
    queryset = CorporateIdentifier.objects.select_related("scope", "user", "device_group", "device")
    return authz.restrict(queryset, user, action)


def corporate_identifier_get(*, user, pk, action: str = "devices.view_corporateidentifier") -> CorporateIdentifier:
    return authz.get_or_404(corporate_identifier_list(user=user, action=action), user, action, pk=pk)


def identifier_import_list(*, user, action: str = "devices.view_identifierimport") -> QuerySet[IdentifierImport]:
    """Imports for a global holder of ``action``; nobody else sees any (an import spans scopes)."""
    return authz.restrict(IdentifierImport.objects.select_related("created_by", "default_scope"), user, action)


def identifier_import_get(*, user, pk, action: str = "devices.view_identifierimport") -> IdentifierImport:
    return authz.get_or_404(identifier_import_list(user=user, action=action), user, action, pk=pk)
