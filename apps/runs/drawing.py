"""A flow run's DAG as a picture: inline SVG drawn on the server, one box per step, colored by the step's status.

Nothing runs in the browser and nothing is loaded from the network: the admin's run page embeds the markup as it is.
Steps are laid out in topological layers, left to right: a step sits one column right of its deepest predecessor
(the longest path from a first step), so every edge points rightwards and parallel branches share a column.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.flows.dag import Edge, topological_order
from apps.runs.models import TaskRun


@dataclass(frozen=True)
class StatusColors:
    """How a step status is painted: box fill and border."""

    fill: str
    stroke: str


# Light fills with a darker border of the same hue, so the dark label text stays readable on every status.
STATUS_COLORS: dict[str, StatusColors] = {
    TaskRun.Status.PENDING: StatusColors("#e5e7eb", "#6b7280"),
    TaskRun.Status.PREPARING: StatusColors("#dbeafe", "#3b82f6"),
    TaskRun.Status.AWAITING_APPROVAL: StatusColors("#fde68a", "#b45309"),
    TaskRun.Status.IN_PROGRESS: StatusColors("#93c5fd", "#1d4ed8"),
    TaskRun.Status.COMPLETED: StatusColors("#bbf7d0", "#15803d"),
    TaskRun.Status.FAILED: StatusColors("#fecaca", "#b91c1c"),
    TaskRun.Status.CANCELLED: StatusColors("#d1d5db", "#374151"),
    TaskRun.Status.SKIPPED: StatusColors("#f9fafb", "#9ca3af"),
}
UNKNOWN_STATUS = StatusColors("#ffffff", "#000000")

NODE_WIDTH = 190
NODE_HEIGHT = 44
COLUMN_GAP = 56
ROW_GAP = 18
MARGIN = 12
LABEL_CHARACTERS = 24
LEGEND_ENTRY_WIDTH = 150
LEGEND_ROW_HEIGHT = 22
# Wide enough for the legend to fit in two rows even when the flow has a single step.
MINIMUM_WIDTH = 4 * LEGEND_ENTRY_WIDTH + 2 * MARGIN


@dataclass(frozen=True)
class DagNode:
    """One step as drawn: its index in the flow, its name and its task run's status."""

    index: int
    name: str
    status: str


def status_colors(status: str) -> StatusColors:
    return STATUS_COLORS.get(status, UNKNOWN_STATUS)


def topological_layers(indices: Sequence[int], edges: Iterable[Edge]) -> list[list[int]]:
    """The steps in columns: each step one column right of its deepest predecessor; each column sorted by index.

    Edges naming an unknown step are ignored. Steps on a cycle (which a validated flow never has) are put in one last
    column rather than left out of the picture.
    """
    known = set(indices)
    kept = sorted({(source, target) for source, target in edges if source in known and target in known})
    predecessors: dict[int, list[int]] = {index: [] for index in known}
    for source, target in kept:
        predecessors[target].append(source)
    order, leftover = topological_order(max(known, default=-1) + 1, kept)
    depth: dict[int, int] = {}
    for index in order:
        if index in known:
            depth[index] = max((depth[source] + 1 for source in predecessors[index]), default=0)
    last = max(depth.values(), default=-1) + 1
    for index in leftover:
        depth[index] = last
    layers: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for index in sorted(depth):
        layers[depth[index]].append(index)
    return layers


def _label(node: DagNode) -> str:
    text = f"{node.index}: {node.name}"
    return text if len(text) <= LABEL_CHARACTERS else text[: LABEL_CHARACTERS - 1] + "\u2026"


def _status_label(status: str) -> str:
    return str(TaskRun.Status(status).label) if status in TaskRun.Status.values else status


def _node(node: DagNode, x: int, y: int) -> SafeString:
    colors = status_colors(node.status)
    return format_html(
        '<g class="dag-node" data-index="{}" data-status="{}"><title>{}: {} ({})</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="{}" stroke="{}" stroke-width="1.5"/>'
        '<text x="{}" y="{}" font-size="12" font-weight="bold" fill="#111827">{}</text>'
        '<text x="{}" y="{}" font-size="11" fill="#374151">{}</text></g>',
        node.index,
        node.status,
        node.index,
        node.name,
        _status_label(node.status),
        x,
        y,
        NODE_WIDTH,
        NODE_HEIGHT,
        colors.fill,
        colors.stroke,
        x + 8,
        y + 18,
        _label(node),
        x + 8,
        y + 35,
        _status_label(node.status),
    )


def _edge(start: tuple[int, int], end: tuple[int, int]) -> SafeString:
    """A curve from the right side of the source box to the left side of the target box, ending in an arrow."""
    (x1, y1), (x2, y2) = start, end
    bend = max(COLUMN_GAP // 2, abs(x2 - x1) // 3)
    return format_html(
        '<path class="dag-edge" d="M{},{} C{},{} {},{} {},{}" fill="none" stroke="#6b7280" stroke-width="1.5" '
        'marker-end="url(#dag-arrow)"/>',
        x1,
        y1,
        x1 + bend,
        y1,
        x2 - bend,
        y2,
        x2,
        y2,
    )


def _legend(top: int, width: int) -> tuple[list[SafeString], int]:
    """One swatch per step status, wrapped to the picture's width; returns the parts and the legend's height."""
    per_row = max(1, (width - 2 * MARGIN) // LEGEND_ENTRY_WIDTH)
    parts = []
    for position, status in enumerate(TaskRun.Status.values):
        colors = status_colors(status)
        x = MARGIN + (position % per_row) * LEGEND_ENTRY_WIDTH
        y = top + (position // per_row) * LEGEND_ROW_HEIGHT
        parts.append(
            format_html(
                '<g class="dag-legend-entry" data-status="{}"><rect x="{}" y="{}" width="14" height="14" rx="3" '
                'fill="{}" stroke="{}"/><text x="{}" y="{}" font-size="12" fill="currentColor">{}</text></g>',
                status,
                x,
                y,
                colors.fill,
                colors.stroke,
                x + 20,
                y + 11,
                _status_label(status),
            )
        )
    rows = -(-len(TaskRun.Status.values) // per_row)
    return parts, rows * LEGEND_ROW_HEIGHT


def dag_svg(nodes: Sequence[DagNode], edges: Iterable[Edge]) -> SafeString:
    """The picture: the steps in topological layers with their dependencies as arrows, then a legend of statuses."""
    by_index = {node.index: node for node in nodes}
    edges = list(edges)
    layers = topological_layers(list(by_index), edges)
    tallest = max((len(layer) for layer in layers), default=0)
    graph_height = tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    width = max(MINIMUM_WIDTH, 2 * MARGIN + len(layers) * NODE_WIDTH + max(len(layers) - 1, 0) * COLUMN_GAP)

    positions: dict[int, tuple[int, int]] = {}
    for column, layer in enumerate(layers):
        # Each column is centred vertically against the tallest one.
        layer_height = len(layer) * NODE_HEIGHT + (len(layer) - 1) * ROW_GAP
        top = MARGIN + (graph_height - layer_height) // 2
        for row, index in enumerate(layer):
            positions[index] = (MARGIN + column * (NODE_WIDTH + COLUMN_GAP), top + row * (NODE_HEIGHT + ROW_GAP))

    parts = [
        _edge(
            (positions[source][0] + NODE_WIDTH, positions[source][1] + NODE_HEIGHT // 2),
            (positions[target][0], positions[target][1] + NODE_HEIGHT // 2),
        )
        for source, target in sorted(set(edges))
        if source in positions and target in positions
    ]
    parts += [_node(by_index[index], *positions[index]) for index in sorted(positions)]
    legend_top = MARGIN + graph_height + (2 * MARGIN if graph_height else 0)
    legend, legend_height = _legend(legend_top, width)
    height = legend_top + legend_height + MARGIN

    return format_html(
        '<svg class="dag" role="img" aria-labelledby="dag-title" width="{}" '
        'height="{}" viewBox="0 0 {} {}" font-family="sans-serif"><title id="dag-title">The run\'s steps and their '
        'dependencies, colored by status</title><defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/>'
        "</marker></defs>{}{}</svg>",
        width,
        height,
        width,
        height,
        format_html_join("", "{}", ((part,) for part in parts)),
        format_html_join("", "{}", ((part,) for part in legend)),
    )
