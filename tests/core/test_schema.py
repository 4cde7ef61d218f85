from django.core.management import call_command


def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn turns every drf-spectacular warning (an unresolvable field, a missing type) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/devices/{id}/" in text
    assert "apiToken" in text
