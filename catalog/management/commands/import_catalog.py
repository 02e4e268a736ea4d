from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importer import (
    ImageSourceError,
    ImportKind,
    catalog_import,
    count_data_rows,
    images_for_path,
)
from catalog.importer.jobs import (
    ImportBusy,
    import_job_in_shell,
    import_job_interrupted,
    import_job_run,
    job_summary,
    shell_worker,
)
from catalog.importer.service import file_errors
from catalog.models import CatalogImport

State = CatalogImport.State


class Command(BaseCommand):
    help = (
        "Import a catalog CSV (historical catalog, new products or a sales update) with its "
        "images. Upserts by sku; a file with any error imports nothing. The rows are written "
        "a chunk at a time, so the site keeps working during a long import; the import is "
        "listed in Products > Imports, and one stopped half way is finished with --resume."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, nargs="?", help="the CSV file")
        parser.add_argument(
            "--images", help="folder (or .zip) holding the images named in image_path"
        )
        parser.add_argument(
            "--kind",
            choices=ImportKind.values,
            help="the CSV format; detected from the header when omitted",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check and report, write nothing"
        )
        parser.add_argument(
            "--resume",
            type=int,
            metavar="IMPORT_ID",
            help="finish writing an import whose write stopped half way (the shell was killed)",
        )

    def handle(self, *args, file, images, kind, dry_run, resume, verbosity, **options):
        if resume is not None:
            return self.resume(resume, verbosity)
        if file is None:
            raise CommandError("give the CSV file (or --resume IMPORT_ID)")
        try:
            csv_data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            source = images_for_path(images)
        except ImageSourceError as exc:
            raise CommandError(str(exc)) from None

        if not dry_run and (errors := file_errors(csv_data, kind)):
            for error in errors:  # refused before an import is recorded
                self.stderr.write(f"{file.name}: {error}")
            raise CommandError(f"{len(errors)} error(s) in {file.name}; nothing was imported.")
        rows = count_data_rows(csv_data)
        with self.bar(rows, f"{file.name}: check", verbosity) as checked:
            if dry_run:
                result = catalog_import(
                    csv_data=csv_data,
                    images=source,
                    kind=kind,
                    dry_run=True,
                    progress=checked.update,
                )
                job = None
            else:
                with (
                    file.open("rb") as handle,
                    self.bar(rows, f"{file.name}: write", verbosity, position=1) as written,
                ):
                    try:
                        job, result = import_job_in_shell(
                            csv_file=File(handle, name=file.name),
                            images=source,
                            kind=kind or "",
                            checked=checked.update,
                            written=written.update,
                        )
                    except KeyboardInterrupt:
                        self.interrupted()

        for error in result.errors:
            self.stderr.write(f"{file.name}: {error}")
        if (unlisted := result.error_count - len(result.errors)) > 0:
            self.stderr.write(f"{file.name}: and {unlisted:,} more errors (counted, not listed)")
        kind_label = result.kind.label.lower() if result.kind else "unknown format"
        if result.errors:
            raise CommandError(
                f"{result.error_count} error(s) in {file.name} ({kind_label}); nothing was imported. "
                f"Rows: {result.summary()}."
            )
        if job is None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{file.name} ({kind_label}): {result.summary()} (dry run: nothing was written)"
                )
            )
            return
        self.report(job, f"{file.name} ({kind_label})")

    def resume(self, job_id: int, verbosity: int) -> None:
        job = CatalogImport.objects.filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"there is no import {job_id}")
        if job.state not in (State.CONFIRMED, State.WRITING):
            raise CommandError(f"import {job_id} is not being written: {job.get_state_display()}")
        left = max(job.total_rows - job.rows_written, 0)
        with self.bar(left, f"import {job_id}: write", verbosity) as written:
            try:
                import_job_run(job_id=job_id, worker=shell_worker(), progress=written.update)
            except ImportBusy as exc:
                raise CommandError(
                    f"{exc}; it counts as alive for {exc.delay:.0f} s more: try again then"
                ) from None
        job.refresh_from_db()
        self.report(job, f"import {job_id} ({job.csv_name})")

    def interrupted(self) -> None:
        job = import_job_interrupted(worker=shell_worker())
        if job is None or job.state == State.CANCELLED:
            raise CommandError("Interrupted: nothing was written.")
        raise CommandError(
            f"Interrupted: import {job.pk} has {job.rows_written} of {job.total_rows} rows "
            f"written and stays writing; `manage.py import_catalog --resume {job.pk}` finishes it."
        )

    def report(self, job: CatalogImport, what: str) -> None:
        """The outcome of a write, as the import's page says it."""
        if job.state != State.DONE:
            raise CommandError(
                f"{what}: {job.get_state_display().lower()}. {job.note} "
                f"Rows: {job_summary(job)}. (Import {job.pk} in Products > Imports.)"
            )
        self.stdout.write(self.style.SUCCESS(f"{what}: {job_summary(job)} (import {job.pk})"))

    def bar(self, total: int, desc: str, verbosity: int, position: int = 0):
        return tqdm(
            total=total,
            unit="row",
            desc=desc,
            disable=verbosity < 1,
            file=self.stderr._out,
            position=position,
        )
