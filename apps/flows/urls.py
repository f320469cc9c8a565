from apps.flows.views import FlowRequestViewSet, FlowViewSet

routes = [
    ("flow_requests", FlowRequestViewSet, "flow-requests"),
    ("flows", FlowViewSet, "flows"),
]
