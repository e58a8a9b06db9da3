"""The statement upload screen: preview, confirm, whole-file rejection, duplicates, access."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from payments.models import ImportBatch, Payment
from payments.sources.bank_csv import MAX_BYTES

GOOD = (
    b"Date,Description,Paid in,Paid out,Name\n"
    b'03/02/2025,"INV-1001, thanks",120.50,,Acme Ltd\n'
    b"03/02/2025,Rent,,900.00,Landlord\n"
    b'04/02/2025,INV-1002,"1,250.07",,Globex\n'
)
UPLOAD = reverse("payments:statement_upload")
CONFIRM = reverse("payments:statement_confirm")


@pytest.fixture(autouse=True)
def _own_var_dir(settings, tmp_path):
    # empty and private, so a test can check the screen writes nothing to the host's disk
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()


def _upload(client, fmt, content, name="statement.csv"):
    return client.post(UPLOAD, {"import_format": fmt.pk, "file": SimpleUploadedFile(name, content)})


def _kept(batch) -> bytes:
    return bytes(ImportBatch.objects.get(pk=batch.pk).content)


def _confirm(client, response):
    """Post the confirm form exactly as the preview page rendered it."""
    batch = response.context["preview"].batch
    data = {"batch": batch.pk}
    if response.context.get("received_from"):
        data["received_from"] = response.context["received_from"].isoformat()
        data["received_to"] = response.context["received_to"].isoformat()
    return client.post(CONFIRM, data)


def test_clerk_previews_then_imports_a_small_csv(client, alice, entity, barclays):
    client.force_login(alice)
    assert client.get(UPLOAD).status_code == 200

    preview = _upload(client, barclays, GOOD)
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "120.50 GBP" in page and "1,250.07 GBP" in page and "Confirm import of 2" in page
    assert Payment.objects.count() == 0  # the preview imports nothing
    assert _kept(preview.context["preview"].batch) == GOOD

    done = _confirm(client, preview)
    assert done.status_code == 302
    amounts = sorted(Payment.objects.values_list("amount", flat=True))
    assert amounts == [Decimal("120.50"), Decimal("1250.07")]
    batch = ImportBatch.objects.get(state="imported")
    assert batch.uploaded_by == alice and batch.imported_count == 2
    assert _kept(batch) == b""  # imported: the table does not keep the file

    # the link lands on the inbox showing this file's payments
    link = urlsplit(done["Location"])
    assert link.path == reverse("payments:inbox")
    assert parse_qs(link.query) == {
        "tab": ["all"],
        "source": ["bank"],
        "received_from": ["2025-02-03"],
        "received_to": ["2025-02-04"],
    }
    inbox = client.get(done["Location"])
    assert "Imported statement.csv: 2 payment(s)" in inbox.content.decode()
    assert {p.pk for p in inbox.context["page"].items} == set(
        Payment.objects.values_list("pk", flat=True)
    )


def test_bad_rows_reject_the_whole_file_with_every_error_named(client, alice, entity, barclays):
    client.force_login(alice)
    content = (
        b"Date,Description,Paid in,Paid out,Name\n"
        b"03/02/2025,INV-1,10.00,,A\n"
        b"31/02/2025,INV-2,10.00,,B\n"
        b"05/02/2025,INV-3,ten,,C\n"
    )
    response = _upload(client, barclays, content)
    assert response.status_code == 400
    page = response.content.decode()
    assert "was rejected: nothing was imported" in page
    errors = [(e.row, e.field) for e in response.context["row_errors"]]
    assert errors == [(3, "date"), (4, "credit")]
    assert "<td>3</td><td>date</td>" in page and "<td>4</td><td>credit</td>" in page
    assert "Confirm import" not in page
    batch = ImportBatch.objects.get()
    assert batch.state == "rejected"
    assert _kept(batch) == b""  # it can never be confirmed, so it is not kept
    # a forged confirm of the rejected preview imports nothing
    client.post(CONFIRM, {"batch": batch.pk})
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.csv", b"When,What,Amount\n01/01/2025,x,1\n", "Column &#x27;Date&#x27; (for date)"),
        ("s.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is not a text (CSV) file"),
        ("s.xlsx", b"not a zip at all", "The Excel file cannot be opened"),
        ("s.csv", b"", "The submitted file is empty."),
        ("s.pdf", b"%PDF-1.4", "A PDF statement cannot be read"),
    ],
)
def test_malformed_files_get_a_clear_message_and_change_nothing(
    client, alice, entity, barclays, name, content, message
):
    client.force_login(alice)
    response = _upload(client, barclays, content, name)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert "Traceback" not in page and "Confirm import" not in page
    assert Payment.objects.count() == 0
    assert not ImportBatch.objects.exclude(state="rejected").exists()


def test_a_file_over_the_size_limit_is_refused_before_reading(client, alice, entity, barclays):
    client.force_login(alice)
    response = _upload(client, barclays, GOOD + b" " * (MAX_BYTES - len(GOOD) + 1))
    assert response.status_code == 400
    assert "The file is larger than 64 MB." in response.content.decode()
    assert not ImportBatch.objects.exists() and Payment.objects.count() == 0


def test_duplicates_are_reported(client, alice, entity, barclays):
    client.force_login(alice)
    _confirm(client, _upload(client, barclays, GOOD))
    assert Payment.objects.count() == 2

    again = _upload(client, barclays, GOOD, "again.csv")
    assert again.status_code == 400
    assert "This file was already imported on" in again.content.decode()

    overlapping = GOOD.splitlines()[0] + b"\n" + GOOD.splitlines()[1] + b"\n"
    overlapping += b"07/02/2025,INV-1003,75.00,,Initech\n"
    preview = _upload(client, barclays, overlapping, "next.csv")
    assert preview.status_code == 200
    page = preview.content.decode()
    assert '<dd data-testid="duplicate-count">1</dd>' in page
    assert '<dd data-testid="new-count">1</dd>' in page
    _confirm(client, preview)
    assert Payment.objects.count() == 3
    assert Payment.objects.filter(amount=Decimal("75.00")).count() == 1


def test_confirm_imports_only_the_kept_bytes_of_ones_own_preview(
    client, alice, bob, entity, barclays
):
    client.force_login(alice)
    preview = _upload(client, barclays, GOOD)
    batch = preview.context["preview"].batch

    client.force_login(bob)  # another clerk cannot confirm alice's preview
    refused = client.post(CONFIRM, {"batch": batch.pk}, follow=True)
    assert "no longer available (or not yours)" in refused.content.decode()
    assert Payment.objects.count() == 0
    assert ImportBatch.objects.get(pk=batch.pk).state == "previewed"
    assert _kept(batch) == GOOD  # still alice's to confirm

    client.force_login(alice)
    ImportBatch.objects.filter(pk=batch.pk).update(content=GOOD.replace(b"120.50", b"999.50"))
    swapped = client.post(CONFIRM, {"batch": batch.pk}, follow=True)
    assert "This is not the file that was previewed" in swapped.content.decode()
    assert Payment.objects.count() == 0


def test_the_confirm_needs_nothing_from_the_previewing_hosts_disk(
    client, alice, entity, barclays, settings, tmp_path
):
    client.force_login(alice)
    preview = _upload(client, barclays, GOOD)
    assert preview.status_code == 200
    assert list(settings.VAR_DIR.rglob("*")) == []

    # the confirm is served by another web host, with a var dir of its own
    settings.VAR_DIR = tmp_path / "other-host"
    settings.VAR_DIR.mkdir()
    done = _confirm(client, preview)
    assert done.status_code == 302
    assert Payment.objects.count() == 2
    assert ImportBatch.objects.get().state == "imported"


def test_an_imported_batch_imports_nothing_twice(client, alice, entity, barclays):
    client.force_login(alice)
    preview = _upload(client, barclays, GOOD)
    _confirm(client, preview)
    assert Payment.objects.count() == 2
    batch = preview.context["preview"].batch

    second_click = client.post(CONFIRM, {"batch": batch.pk}, follow=True)
    assert "no longer available" in second_click.content.decode()

    # two confirms that both read the bytes before either committed: the batch's state decides
    ImportBatch.objects.filter(pk=batch.pk).update(content=GOOD)
    raced = client.post(CONFIRM, {"batch": batch.pk}, follow=True)
    assert "Nothing imported" in raced.content.decode()
    assert Payment.objects.count() == 2
    assert ImportBatch.objects.get(pk=batch.pk).imported_count == 2


def test_previews_nobody_confirmed_lose_their_file_a_day_later(
    client, alice, bob, entity, barclays
):
    client.force_login(bob)
    recent = _upload(client, barclays, GOOD, "recent.csv").context["preview"].batch
    client.force_login(alice)
    stale = _upload(client, barclays, GOOD, "stale.csv").context["preview"].batch
    ImportBatch.objects.filter(pk=stale.pk).update(
        created_at=timezone.now() - timedelta(days=1, minutes=1)
    )

    other = b"Date,Description,Paid in,Paid out,Name\n05/02/2025,INV-1003,75.00,,Initech\n"
    newest = _upload(client, barclays, other, "newest.csv").context["preview"].batch
    assert _kept(stale) == b""
    assert _kept(recent) == GOOD and _kept(newest) == other

    refused = client.post(CONFIRM, {"batch": stale.pk}, follow=True)
    assert "no longer available" in refused.content.decode()
    assert Payment.objects.count() == 0
    assert ImportBatch.objects.get(pk=stale.pk).state == "previewed"  # the record stays


def test_the_admin_never_shows_the_uploaded_file(client, alice, carol, entity, barclays):
    client.force_login(alice)
    batch = _upload(client, barclays, GOOD).context["preview"].batch
    client.force_login(carol)
    for url in (
        reverse("admin:payments_importbatch_changelist"),
        reverse("admin:payments_importbatch_change", args=[batch.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert "statement.csv" in page.content.decode()
        assert "Landlord" not in page.content.decode()


def test_access(client, mallory, entity, barclays):
    anonymous = client.get(UPLOAD)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    client.force_login(mallory)
    assert client.get(UPLOAD).status_code == 403
    assert _upload(client, barclays, GOOD).status_code == 403
    assert client.post(CONFIRM, {"batch": 1}).status_code == 403
    assert not ImportBatch.objects.exists() and Payment.objects.count() == 0
