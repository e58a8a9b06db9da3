"""Run the matching engine over unmatched payments: `manage.py auto_match [--dry-run]`."""

from django.core.management.base import BaseCommand, CommandError

from payments.services.matching_lease import MatchingRunBusy
from payments.services.matching_runs import matching_run


class Command(BaseCommand):
    help = "Propose matches for unmatched payments (--dry-run: show them, change nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Show, do not write.")
        parser.add_argument(
            "--payment", type=int, action="append", dest="payment_ids", help="Only this id."
        )
        parser.add_argument(
            "--no-auto-approve",
            action="store_true",
            help="Write proposals only; do not turn auto-approve matches into plans.",
        )
        parser.add_argument("--show", type=int, default=20, help="Payments to list (default 20).")

    def handle(self, *args, dry_run, payment_ids, no_auto_approve, show, **options):
        try:
            report = matching_run(
                dry_run=dry_run, payment_ids=payment_ids, auto_approve=not no_auto_approve
            )
        except MatchingRunBusy as busy:
            raise CommandError(str(busy)) from None
        for result in report.results[:show]:
            payment = result.payment
            if result.candidates:
                best = result.candidates[0]
                flag = " [review]" if result.needs_review else ""
                flag += " [auto-approve]" if best.auto_approve else ""
                self.stdout.write(
                    f"payment {payment.id}: {best.rule.kind} {best.confidence / 1000:.3f}"
                    f"{flag} {best.explanation}"
                    + (
                        f" (+{len(result.candidates) - 1} alternative(s))"
                        if len(result.candidates) > 1
                        else ""
                    )
                )
            else:
                why = "; ".join(result.notes) or "no rule matched"
                self.stdout.write(f"payment {payment.id}: no match ({why})")
        if report.share_timings:
            # matched in several processes: the proposals are on the run's page, not here
            self.stdout.write(
                f"matched in {len(report.share_timings)} processes; the proposals are listed "
                f"at /payments/runs/{report.run_id}/proposals"
            )
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"{'DRY RUN: nothing written. ' if dry_run else ''}run {report.run_id}: "
                f"{report.payments} payment(s), {report.proposed} proposed "
                f"({report.needs_review} need review), {report.unmatched} unmatched, "
                f"{report.proposal_rows} proposal row(s), {report.auto_approved} auto-approved; "
                f"{timings}"
            )
        )
        for payment_id, why in report.auto_refused:
            self.stdout.write(self.style.WARNING(f"payment {payment_id}: not auto-approved: {why}"))
