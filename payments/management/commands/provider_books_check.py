"""Check the provider books' set-up against AIQ as it is now (issue 17.1, 17.6).

    python manage.py provider_books_check

For every company with a provider account: AIQ's bank list (GetBankList) and GL list
(GetGLAccountList) are pulled into the mirror first, then the start-up checks run
(payments/checks.py: each clearing and payout bank in AIQ's bank list, in the account's
currency; each GL account the books post to in AIQ's GL list and able to take a journal).
Prints each problem; exits 1 when there is one, 0 when there is none. A company AIQ cannot
answer for is named and counts as a problem.
"""

from django.core.management.base import BaseCommand, CommandError

from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.models import Entity
from ledger.sync.pull import sync_banks, sync_gl_accounts
from payments.checks import provider_books_problems


class Command(BaseCommand):
    help = "Check every provider account's banks and GL accounts against AIQ as it is now."

    def handle(self, *args, **options):
        unreachable = []
        for entity in Entity.objects.filter(provideraccount__isnull=False).distinct():
            try:
                client = AiqClient.for_entity(entity)
                sync_banks(client, entity)
                sync_gl_accounts(client, entity)
            except AiqError as error:
                unreachable.append(f"{entity.name}: AIQ could not be asked ({error})")
        problems = unreachable + provider_books_problems()
        for text in problems:
            self.stdout.write(text)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the provider books' set-up")
        self.stdout.write("Provider books: every bank and GL account is in AIQ and usable.")
