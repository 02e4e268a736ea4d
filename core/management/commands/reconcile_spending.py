"""Compare the spending ledger with OpenRouter's account of the key, now."""

from django.core.management.base import BaseCommand, CommandError

from core.reconcile import spend_reconcile


class Command(BaseCommand):
    help = (
        "Compare the spending ledger with OpenRouter's own account of the key (GET /key, and "
        "each booked generation), settle reservations of calls that may have been billed "
        "without an answer, and book what nobody booked as unattributed provider spend. The "
        "scheduler runs this every SPENDING_RECONCILE_INTERVAL_SECONDS."
    )

    def handle(self, *args, **options):
        run = spend_reconcile()
        if run is None:
            self.stdout.write("No OPENROUTER_API_KEY: the offline providers bill nothing.")
            return
        if run.error:
            raise CommandError(run.error)
        self.stdout.write(
            f"provider's usage of the key: ${run.key_usage}  baseline: ${run.baseline}\n"
            f"booked calls: ${run.attributed}  reserved, unsettled: ${run.pending}\n"
            f"unattributed provider spend: ${run.unattributed} "
            f"(this run booked ${run.booked})\n"
            f"reservations settled: {run.settled}  generations checked: "
            f"{run.generations_checked}, differing: {run.generations_differing}"
        )
        if run.note:
            self.stdout.write(run.note)
