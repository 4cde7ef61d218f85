"""Line-of-business packages: format by platform, version read from the file, size limit, damaged files.

Real small packages are built in the test (``tests.apps.packages``). A refused package leaves
nothing behind: no version row, no file in storage, no change to the app.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from django.core.exceptions import ValidationError

from apps.choices import AppKind, PackageFormat
from apps.models import App, AppVersion
from apps.services import app_save, app_version_add
from apps.services.packages import PackageError, package_format, package_inspect
from devices.choices import Platform
from mdm_portal.core.models import AuditEvent
from tests.apps import packages as build
from tests.factories import SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def lob(platform=Platform.IOS, name="Field", identifier=""):
    return app_save(
        actor=SYSTEM, data={"name": name, "kind": AppKind.LOB, "platform": platform, "identifier": identifier}
    )


def refused(app, media, field, sentence, **kwargs):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as exc:
        app_version_add(actor=SYSTEM, app=app, **kwargs)
    messages = exc.value.message_dict[field]
    assert any(sentence in message for message in messages), messages
    assert not AppVersion.objects.filter(app=app).exists()
    assert stored_files(media) == []
    assert AuditEvent.objects.count() == before
    return messages[0]


def test_an_ipa_gives_its_version_identifier_and_minimum_os_and_is_stored_with_its_checksum(media):
    app = lob()
    data = build.ipa()
    version = app_version_add(actor=SYSTEM, app=app, package=build.upload("Field.ipa", data))
    app.refresh_from_db()
    assert (version.version, version.min_os_version, version.package_format) == ("2.4.1", "16.0", PackageFormat.IPA)
    assert (version.sha256, version.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert app.identifier == "com.example.field"  # taken from the package
    assert app.current_version == version
    assert version.package.read() == data
    assert stored_files(media) == [version.package.name]
    event = AuditEvent.objects.filter(verb="app.version_add").get()
    assert event.changes["sha256"] == version.sha256


def test_an_xml_info_plist_is_read_too():
    app = lob()
    version = app_version_add(actor=SYSTEM, app=app, package=build.upload("f.ipa", build.ipa(binary_plist=False)))
    assert version.version == "2.4.1"


@pytest.mark.parametrize("compression", ["gz", "xz", "bz2", ""])
def test_a_deb_gives_its_version_and_package_name(compression):
    app = lob(Platform.LINUX)
    version = app_version_add(
        actor=SYSTEM, app=app, package=build.upload("field.deb", build.deb(compression=compression))
    )
    app.refresh_from_db()
    assert (version.version, app.identifier) == ("1:2.4.1-1", "field-agent")
    # The epoch is not part of the sortable key: 2.4.1.
    assert version.version_key == "000002.000004.000001.000000"


def test_a_deb_with_zstd_control_data_needs_the_version_entered(media):
    app = lob(Platform.LINUX)
    data = build.ar([("debian-binary", b"2.0\n"), ("control.tar.zst", b"(\xb5/\xfd..."), ("data.tar.zst", b"x")])
    message = refused(app, media, "version", "zstd", package=build.upload("field.deb", data))
    assert message == "Enter the version: its control data is compressed with zstd, which the portal cannot read."
    version = app_version_add(actor=SYSTEM, app=app, version="2.0.0", package=build.upload("field.deb", data))
    assert version.version == "2.0.0"


def test_an_apk_gives_its_version_name_and_package():
    app = lob(Platform.ANDROID)
    version = app_version_add(actor=SYSTEM, app=app, package=build.upload("scanner.apk", build.apk()))
    app.refresh_from_db()
    assert (version.version, app.identifier) == ("3.2.0", "com.example.scanner")


def test_an_apk_whose_version_name_is_a_resource_needs_it_entered(media):
    app = lob(Platform.ANDROID)
    data = build.apk(version_name=None)
    refused(app, media, "version", "resource reference", package=build.upload("scanner.apk", data))
    version = app_version_add(actor=SYSTEM, app=app, version="3.2.0", package=build.upload("scanner.apk", data))
    app.refresh_from_db()
    assert (version.version, app.identifier) == ("3.2.0", "com.example.scanner")


@pytest.mark.parametrize(
    ("platform", "filename", "data"),
    [(Platform.WINDOWS, "setup.msi", build.msi()), (Platform.MACOS, "Field.pkg", build.pkg())],
)
def test_msi_and_pkg_are_checked_and_their_version_entered(media, platform, filename, data):
    app = lob(platform)
    refused(app, media, "version", "Enter the version", package=build.upload(filename, data))
    version = app_version_add(actor=SYSTEM, app=app, version="5.1", package=build.upload(filename, data))
    assert version.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("platform", "filename", "sentence"),
    [
        (Platform.IOS, "field.apk", "A iOS app is installed from a .ipa package; this is a .apk file."),
        (Platform.LINUX, "field.ipa", "A Linux app is installed from a .deb package; this is a .ipa file."),
        (Platform.ANDROID, "field", "this is a file without an extension"),
    ],
)
def test_the_extension_must_be_the_platforms_package_format(media, platform, filename, sentence):
    refused(lob(platform), media, "package", sentence, package=build.upload(filename, build.ipa()))


def test_an_oversized_package_is_refused_before_it_is_read(media, settings):
    settings.MDM_APP_PACKAGE_MAX_BYTES = 100
    data = build.ipa()
    assert len(data) > 100
    message = refused(lob(), media, "package", "the limit is 100\xa0bytes", package=build.upload("f.ipa", data))
    assert "MDM_APP_PACKAGE_MAX_BYTES" in message


def _truncated_zip():
    return build.ipa()[:-40]


def _ipa_without_plist():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Payload/Field.app/Field", b"binary")
    return buffer.getvalue()


def _ipa_with_broken_plist():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Payload/Field.app/Info.plist", b"bplist00\xff\xff not really")
    return buffer.getvalue()


def _deb_cut_short():
    return build.deb()[:200]


@pytest.mark.parametrize(
    ("platform", "filename", "make", "sentence"),
    [
        (Platform.IOS, "f.ipa", lambda: b"this is not a zip", "not a readable ZIP archive"),
        (Platform.IOS, "f.ipa", _truncated_zip, "not a readable ZIP archive"),
        (Platform.IOS, "f.ipa", _ipa_without_plist, "has no Payload/<App>.app/Info.plist"),
        (Platform.IOS, "f.ipa", _ipa_with_broken_plist, "The Info.plist of this .ipa is damaged"),
        (Platform.LINUX, "f.deb", lambda: b"PK\x03\x04 a zip, not a deb", "not a Debian package"),
        (Platform.LINUX, "f.deb", _deb_cut_short, "is truncated"),
        (Platform.LINUX, "f.deb", lambda: build.ar([("debian-binary", b"2.0\n")]), "no data.tar member"),
        (Platform.ANDROID, "f.apk", _ipa_without_plist, "has no AndroidManifest.xml"),
        (Platform.WINDOWS, "f.msi", lambda: b"MZ not an msi", "not a Windows Installer package"),
        (Platform.MACOS, "f.pkg", lambda: b"PK not a xar", "not a flat macOS installer package"),
    ],
)
def test_a_damaged_package_is_refused_with_a_sentence_and_nothing_is_stored(media, platform, filename, make, sentence):
    message = refused(lob(platform), media, "package", sentence, version="1.0", package=build.upload(filename, make()))
    assert message.endswith(".")


def test_a_package_of_another_app_or_version_is_refused(media):
    app = lob(identifier="com.example.field")
    refused(
        app, media, "version", "The package says it is version 2.4.1, not 2.5.",
        version="2.5", package=build.upload("f.ipa", build.ipa()),
    )  # fmt: skip
    refused(
        app, media, "package", "This package is com.example.other, but Field is com.example.field.",
        package=build.upload("f.ipa", build.ipa(identifier="com.example.other")),
    )  # fmt: skip
    app.refresh_from_db()
    assert app.current_version is None


def test_a_package_whose_identifier_belongs_to_another_app_is_refused(media):
    lob(name="Field (store)", identifier="com.example.field")
    refused(
        lob(name="Field LOB"),
        media,
        "package",
        "already the app Field (store)",
        package=build.upload("f.ipa", build.ipa()),
    )


def test_a_new_package_version_supersedes_the_current_one_and_an_old_one_is_refused(media):
    app = lob()
    first = app_version_add(actor=SYSTEM, app=app, package=build.upload("f.ipa", build.ipa(version="2.4.1")))
    second = app_version_add(actor=SYSTEM, app=app, package=build.upload("f.ipa", build.ipa(version="2.10")))
    app.refresh_from_db()
    assert app.current_version == second
    assert len(stored_files(media)) == 2
    with pytest.raises(ValidationError, match="not newer than the current version"):
        app_version_add(actor=SYSTEM, app=app, package=build.upload("f.ipa", build.ipa(version="2.9")))
    with pytest.raises(ValidationError, match="already has version"):
        app_version_add(actor=SYSTEM, app=app, package=build.upload("f.ipa", build.ipa(version="2.4.1")))
    assert len(stored_files(media)) == 2
    assert set(AppVersion.objects.values_list("pk", flat=True)) == {first.pk, second.pk}


def test_store_apps_take_no_package_and_lob_apps_need_one(media):
    store = app_save(
        actor=SYSTEM, data={"name": "Teams", "kind": AppKind.STORE, "platform": Platform.IOS, "identifier": "x.y"}
    )
    refused(
        store, media, "package", "Only line-of-business apps take a package", package=build.upload("f.ipa", build.ipa())
    )
    refused(lob(), media, "package", "Upload the package file", version="1.0")


def test_deleting_the_app_deletes_its_packages_once_committed(media, django_capture_on_commit_callbacks):
    from apps.services import app_delete

    app = lob()
    app_version_add(actor=SYSTEM, app=app, package=build.upload("f.ipa", build.ipa()))
    with django_capture_on_commit_callbacks(execute=True):
        app_delete(actor=SYSTEM, app=app)
    assert stored_files(media) == []
    assert not App.objects.exists()


def test_the_readers_are_usable_on_their_own():
    assert package_format(Platform.IPADOS, "Field.IPA") == PackageFormat.IPA
    with pytest.raises(PackageError):
        package_format(Platform.IOS, "Field.zip")
    info = package_inspect(io.BytesIO(build.deb(version="3.0-2")), PackageFormat.DEB)
    assert (info.identifier, info.version) == ("field-agent", "3.0-2")
