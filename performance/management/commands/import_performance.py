from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from performance.services import COUNTS, performance_check, performance_import_run

SHOWN = 50  # unmatched rows and duplicates listed; the counts hold them all


class Command(BaseCommand):
    help = (
        "Import a channel's performance CSV (Google Merchant Center / Ads style): sku or "
        "image_url, channel or preset, date (YYYY-MM-DD), impressions, clicks, and optionally "
        "add_to_carts, orders, revenue. Each row is matched to the published image that was "
        "live for that SKU and preset on that day; rows with no such image are listed, never "
        "guessed. A file with any error imports nothing. Importing a file again changes only "
        "the figures that differ."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check and report, write nothing"
        )

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        if dry_run:
            plan = performance_check(data=data)
            counts, report = plan.counts(), plan.report()
        else:
            job = performance_import_run(data=data, csv_name=file.name)
            counts, report = {name: getattr(job, name) for name in COUNTS}, job.report
        for line, sku, preset, day, reason in report["unmatched"][:SHOWN]:
            self.stdout.write(f"line {line}: unmatched ({sku}, {preset}, {day}): {reason}")
        for line, first, sku, preset, day, same in report["duplicates"][:SHOWN]:
            figures = "same figures" if same else "different figures, not used"
            self.stdout.write(
                f"line {line}: repeats line {first} ({sku}, {preset}, {day}; {figures})"
            )
        for line, sku, preset, day, changes in report["updates"][:SHOWN]:
            self.stdout.write(f"line {line}: updates ({sku}, {preset}, {day}): {changes}")
        for error in report["errors"]:
            self.stderr.write(f"{file.name}: {error}")
        if counts["errors"]:
            raise CommandError(f"{counts['errors']} error(s) in {file.name}; nothing was imported.")
        verb = "would write" if dry_run else "wrote"
        self.stdout.write(
            f"{file.name}: {counts['rows']} rows, {counts['matched']} matched ({verb} "
            f"{counts['created']} new, {counts['updated']} updated; {counts['unchanged']} "
            f"unchanged), {counts['unmatched']} unmatched, {counts['duplicates']} duplicates"
        )
