"""Verification is pure: the after-report must hold none of the managed set and no corporate data."""

from retirement.verification import verify

BEFORE = {
    "managed_apps": [{"identifier": "com.acme.crm", "name": "Acme CRM"}],
    "managed_profiles": [{"identifier": "org.mdmportal.profile.1", "name": "Corporate Wi-Fi"}],
    "installed_apps": [{"identifier": "com.acme.crm"}, {"identifier": "com.spotify.client"}],
}


def test_a_clean_report_passes_and_personal_apps_may_stay():
    result = verify(BEFORE, {"installed_apps": [{"identifier": "com.spotify.client"}], "profiles": []})
    assert result.clean and result.leftovers == []


def test_leftovers_are_named():
    after = {
        "installed_apps": [{"identifier": "com.acme.crm"}],
        "profiles": [{"identifier": "org.mdmportal.profile.1", "version": 1}],
        "corporate_data": {"accounts": True, "files": False},
    }
    result = verify(BEFORE, after)
    assert not result.clean
    assert result.leftovers == [
        {"kind": "app", "identifier": "com.acme.crm", "name": "Acme CRM"},
        {"kind": "profile", "identifier": "org.mdmportal.profile.1", "name": "Corporate Wi-Fi"},
        {"kind": "corporate_data", "identifier": "accounts", "name": "Corporate e-mail and accounts"},
    ]
    assert "Acme CRM (app)" in result.sentence() and result.sentence().startswith("3 managed items")


def test_no_report_is_not_clean():
    result = verify(BEFORE, {})
    assert not result.clean and result.leftovers[0]["kind"] == "report"


def test_corporate_data_as_the_agent_reports_it():
    clean = {"installed_apps": [], "profiles": [], "corporate_data": {"present": False, "details": []}}
    assert verify(BEFORE, clean).clean
    dirty = {**clean, "corporate_data": {"present": True, "details": ["Exchange account mail.acme.com"]}}
    assert verify(BEFORE, dirty).leftovers == [
        {
            "kind": "corporate_data",
            "identifier": "Exchange account mail.acme.com",
            "name": "Exchange account mail.acme.com",
        }
    ]
