"""Readable PDF documents (invoice, credit note, receipt) drawn with reportlab.

`invariant=1` makes the bytes depend only on the content (no creation time, no random id), so
the same transaction always gives the same PDF.
"""

import io
from decimal import Decimal

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from sandbox.money import shown


def document_pdf(
    *,
    title: str,
    number: str,
    entity_name: str,
    customer_code: str,
    customer_name: str,
    address: list[str],
    date: str,
    currency: str,
    lines: list[tuple[str, Decimal, Decimal, Decimal]],  # description, net, tax, gross
    totals: list[tuple[str, Decimal]],
    notes: list[str] = (),
) -> bytes:
    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=A4, invariant=1)
    pdf.setTitle(f"{title} {number}")
    pdf.setAuthor(entity_name)
    width, height = A4
    y = height - 25 * mm
    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawString(20 * mm, y, f"{title} {number}")
    pdf.setFont("Helvetica", 10)
    pdf.drawRightString(width - 20 * mm, y, entity_name)
    y -= 12 * mm
    for text in [f"Customer: {customer_code} - {customer_name}", *address, f"Date: {date}",
                 f"Currency: {currency}"]:  # fmt: skip
        pdf.drawString(20 * mm, y, text)
        y -= 5 * mm
    y -= 5 * mm
    pdf.setFont("Helvetica-Bold", 10)
    columns = (20 * mm, 120 * mm, 150 * mm, width - 20 * mm)
    pdf.drawString(columns[0], y, "Description")
    for x, label in zip(columns[1:], ("Net", "Tax", "Gross"), strict=True):
        pdf.drawRightString(x + (0 if label == "Gross" else 20 * mm), y, label)
    pdf.setFont("Helvetica", 10)
    for description, net, tax, gross in lines:
        y -= 6 * mm
        if y < 40 * mm:
            pdf.showPage()
            pdf.setFont("Helvetica", 10)
            y = height - 25 * mm
        pdf.drawString(columns[0], y, (description or "")[:60])
        for x, amount in zip(columns[1:], (net, tax, gross), strict=True):
            text = shown(amount, currency, with_code=False)
            pdf.drawRightString(x + (0 if x == columns[3] else 20 * mm), y, text)
    y -= 10 * mm
    pdf.setFont("Helvetica-Bold", 11)
    for label, amount in totals:
        pdf.drawString(110 * mm, y, label)
        pdf.drawRightString(width - 20 * mm, y, shown(amount, currency))
        y -= 6 * mm
    pdf.setFont("Helvetica", 9)
    for note in notes:
        y -= 5 * mm
        pdf.drawString(20 * mm, y, note[:100])
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
