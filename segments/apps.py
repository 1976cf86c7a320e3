from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "RFM segments"

    def ready(self) -> None:
        # Registers the scrape-time RFM metrics in every process.
        from segments import metrics  # noqa: F401
