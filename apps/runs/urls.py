from apps.runs.views import FlowResultViewSet, FlowRunViewSet

routes = [
    ("flow_runs", FlowRunViewSet, "flow-runs"),
    ("flow_results", FlowResultViewSet, "flow-results"),
]
