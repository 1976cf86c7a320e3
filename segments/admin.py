"""Back-office for segments: browse and filter them, edit risk profiles, start
an RFM run, read the run history and a chart of users per group over time.

The schedule itself is django-celery-beat's "Periodic tasks" admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from segments.models import RfmGroup, RfmRun, UserSegment

logger = logging.getLogger(__name__)

# Runs plotted on the "over time" chart, the newest ones.
CHART_RUNS = 60
GROUP_COLOURS = {
    RfmGroup.WHALE: "#6a3d9a",
    RfmGroup.HIGH_ENGAGED: "#1f78b4",
    RfmGroup.MEDIUM: "#33a02c",
    RfmGroup.LOW: "#b2b2b2",
}
# Geometry of the SVG charts, in user units.
CHART_WIDTH = 720
BAR_HEIGHT = 26
LINE_HEIGHT = 260
MARGIN_LEFT = 110
MARGIN_RIGHT = 20
MARGIN_TOP = 16
MARGIN_BOTTOM = 28


def enqueue_rfm_run(request: HttpRequest) -> None:
    """Queue the batch for a worker and tell the operator what happened."""
    from segments.tasks import compute_rfm

    try:
        compute_rfm.delay()
    except Exception as exc:
        logger.warning("could not enqueue an RFM run from the admin", exc_info=True)
        messages.error(request, f"The RFM run could not be queued: {exc}")
        return
    logger.info("RFM run queued from the admin by %s", request.user.get_username())
    messages.success(
        request,
        "RFM run queued. It appears in the run history when a worker starts it; "
        "if another run is going on it is recorded as skipped.",
    )


@admin.register(UserSegment)
class UserSegmentAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "rfm_group",
        "risk_profile",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "last_updated",
    ]
    list_editable = ["risk_profile"]
    list_filter = ["rfm_group", "risk_profile"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    ordering = ["user_id"]
    # Counting a million filtered rows on every page is not worth it.
    show_full_result_count = False
    batch_fields = [
        "rfm_group",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "last_updated",
    ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_rfm": can_run(request)}
        return super().changelist_view(request, extra_context)

    def get_readonly_fields(self, request, obj=None):
        # The batch owns everything but the risk profile; the user is fixed
        # once the row exists.
        if obj is None:
            return self.batch_fields
        return ["user", *self.batch_fields]


@dataclass
class _Bar:
    group: str
    count: int
    colour: str
    y: int
    width: float
    label_y: int


@dataclass
class _Line:
    group: str
    colour: str
    points: str
    markers: list[tuple[float, float]]
    last: int


@admin.register(RfmRun)
class RfmRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "started_at",
        "duration",
        "as_of",
        "window_days",
        "users_processed",
        "active_users",
        "groups",
    ]
    list_filter = ["status"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in RfmRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="duration (s)")
    def duration(self, run: RfmRun) -> str:
        seconds = run.duration_seconds
        return "—" if seconds is None else f"{seconds:.2f}"

    @admin.display(description="users per group")
    def groups(self, run: RfmRun) -> str:
        counts = run.group_counts or {}
        return ", ".join(f"{name}: {count}" for name, count in counts.items())

    def get_urls(self):
        own = [
            path(
                "run/",
                self.admin_site.admin_view(require_POST(self.run_view)),
                name="segments_rfmrun_run",
            ),
            path(
                "chart/",
                self.admin_site.admin_view(self.chart_view),
                name="segments_rfmrun_chart",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_rfm": can_run(request)}
        return super().changelist_view(request, extra_context)

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if not can_run(request):
            raise PermissionDenied
        enqueue_rfm_run(request)
        return HttpResponseRedirect(reverse("admin:segments_rfmrun_changelist"))

    def chart_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied

        runs = list(
            RfmRun.objects.filter(status=RfmRun.Status.SUCCEEDED).order_by(
                "-finished_at"
            )[:CHART_RUNS]
        )
        runs.reverse()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Users per RFM group",
            "latest": runs[-1] if runs else None,
            "runs": runs,
            "groups": list(RfmGroup.values),
            "table_rows": [
                (run, [(run.group_counts or {}).get(g, 0) for g in RfmGroup.values])
                for run in reversed(runs)
            ],
            "can_run_rfm": can_run(request),
            **bar_chart(runs[-1] if runs else None),
            **line_chart(runs),
        }
        return TemplateResponse(request, "admin/segments/rfmrun/chart.html", context)


def can_run(request: HttpRequest) -> bool:
    return request.user.has_perm("segments.run_rfm")


def bar_chart(run: RfmRun | None) -> dict[str, object]:
    """Horizontal bars: users per group in one run."""
    counts = (run.group_counts if run else {}) or {}
    largest = max([*counts.values(), 1])
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT - 60
    bars = []
    for index, group in enumerate(RfmGroup.values):
        count = int(counts.get(group, 0))
        y = MARGIN_TOP + index * (BAR_HEIGHT + 10)
        bars.append(
            _Bar(
                group=group,
                count=count,
                colour=GROUP_COLOURS[group],
                y=y,
                width=round(plot_width * count / largest, 1),
                label_y=y + BAR_HEIGHT // 2 + 5,
            )
        )
    height = MARGIN_TOP + len(bars) * (BAR_HEIGHT + 10) + 4
    return {"bars": bars, "bar_chart_height": height, "bar_left": MARGIN_LEFT}


def line_chart(runs: list[RfmRun]) -> dict[str, object]:
    """One polyline per group: users in that group, run after run."""
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = LINE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    largest = max(
        [count for run in runs for count in (run.group_counts or {}).values()] + [1]
    )
    step = plot_width / (len(runs) - 1) if len(runs) > 1 else 0

    def x(index: int) -> float:
        return MARGIN_LEFT + (index * step if len(runs) > 1 else plot_width / 2)

    def y(count: int) -> float:
        return MARGIN_TOP + plot_height * (1 - count / largest)

    lines = []
    for group in RfmGroup.values:
        counts = [int((run.group_counts or {}).get(group, 0)) for run in runs]
        markers = [
            (round(x(index), 1), round(y(count), 1))
            for index, count in enumerate(counts)
        ]
        points = " ".join(f"{px},{py}" for px, py in markers)
        last = counts[-1] if counts else 0
        lines.append(_Line(group, GROUP_COLOURS[group], points, markers, last))
    return {
        "lines": lines,
        "line_chart_height": LINE_HEIGHT,
        "line_largest": largest,
        "plot_left": MARGIN_LEFT,
        "plot_right": CHART_WIDTH - MARGIN_RIGHT,
        "plot_top": MARGIN_TOP,
        "plot_bottom": LINE_HEIGHT - MARGIN_BOTTOM,
        "first_run": runs[0] if runs else None,
        "last_run": runs[-1] if runs else None,
        "chart_width": CHART_WIDTH,
    }
