"""Device-group rules: validation of what an admin types, and translation into one SQL filter."""

import re

from django.core.exceptions import ValidationError
from django.db.models import Q

from mdm_portal.core.models import Scope

from .choices import GroupRuleField, Ownership, Platform
from .versions import InvalidVersion, parse_version, version_key


def _platforms(value: str) -> list[str]:
    return [p.strip().lower() for p in value.split(",") if p.strip()]


def glob_to_regex(pattern: str) -> str:
    """``LAB-*`` -> ``^LAB\\-.*$``: a case-insensitive regex both PostgreSQL and SQLite accept."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char.isalnum() or char == " ":
            out.append(char)
        else:
            out.append("\\" + char)
    return "^" + "".join(out) + "$"


def rule_validate(field: str, value: str) -> str:
    """Return the normalised value, or raise ``ValidationError`` with a sentence saying what to fix."""
    value = (value or "").strip()
    if not value:
        raise ValidationError("Enter a value for this rule.")
    if field == GroupRuleField.PLATFORM:
        platforms = _platforms(value)
        unknown = [p for p in platforms if p not in Platform.values]
        if unknown or not platforms:
            raise ValidationError(
                f"Unknown platform {', '.join(unknown) or value!r}. Use one or more of: {', '.join(Platform.values)}."
            )
        return ",".join(platforms)
    if field == GroupRuleField.OWNERSHIP:
        if value.lower() not in Ownership.values:
            raise ValidationError(f"Ownership must be one of: {', '.join(Ownership.values)}.")
        return value.lower()
    if field in (GroupRuleField.OS_VERSION_MIN, GroupRuleField.OS_VERSION_MAX):
        try:
            parse_version(value)
        except InvalidVersion as exc:
            raise ValidationError(str(exc)) from exc
        return value
    if field == GroupRuleField.SCOPE:
        if not Scope.objects.filter(slug=value).exists():
            raise ValidationError(f"There is no scope with the slug {value!r}. Check the list of scopes.")
        return value
    if field == GroupRuleField.NAME_PATTERN:
        if len(value) > 100:
            raise ValidationError("A name pattern can be at most 100 characters long.")
        return value
    raise ValidationError(f"Unknown rule field {field!r}.")


def rule_q(field: str, value: str) -> Q:
    """One rule as a filter on ``Device``."""
    if field == GroupRuleField.PLATFORM:
        return Q(platform__in=_platforms(value))
    if field == GroupRuleField.OWNERSHIP:
        return Q(ownership=value)
    if field == GroupRuleField.OS_VERSION_MIN:
        return Q(os_version_key__gte=version_key(value))
    if field == GroupRuleField.OS_VERSION_MAX:
        # Inclusive of every release of the given version: "at most 17" admits 17.4.1.
        upper = version_key(value).split(".")
        given = len(re.findall(r"\d+", value))
        upper = upper[:given] + ["999999"] * (len(upper) - given)
        return Q(os_version_key__lte=".".join(upper), os_version_key__gt="")
    if field == GroupRuleField.SCOPE:
        return Q(scope__slug=value)
    if field == GroupRuleField.NAME_PATTERN:
        return Q(name__iregex=glob_to_regex(value))
    raise ValueError(f"Unknown rule field {field!r}")


def rules_q(rules: list[tuple[str, str]], *, match_all: bool) -> Q:
    """All rules combined. No rules match no device: an empty rule-based group is empty."""
    if not rules:
        return Q(pk__in=[])
    combined = Q()
    for field, value in rules:
        combined = combined & rule_q(field, value) if match_all else combined | rule_q(field, value)
    return combined
