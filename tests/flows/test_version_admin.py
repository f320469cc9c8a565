"""Flow versions in the admin: read-only pages with the version's steps and edges, a link to the version before it and
what changed since, readably; reached from a run's page; another organization's version answers 404.

Personas: ``reader`` (staff who may view runs only, a member of the owner's organization), ``stranger`` (the same
permission, a member of the outsider's organization).
"""

import re

import pytest
from django.test import Client
from django.utils.html import escape

from apps.flows.models import Flow, FlowVersion
from apps.flows.services import DependencyDraft, flow_delete, flow_update
from apps.runs.services.run_creation import flow_execute
from tests.factories import staff_user
from tests.runs.flows import make_flow, make_request, step

pytestmark = pytest.mark.django_db

VERSIONS = "/admin/flows/flowversion/"


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reader(organization):
    return staff_user("reader@example.com", "view_flowrun", organizations=[organization])


@pytest.fixture
def stranger(outsider_organization):
    return staff_user("stranger@example.com", "view_flowrun", organizations=[outsider_organization])


@pytest.fixture
def edited_flow(owner):
    """Version 1: Format Text 0 -> Format Text 1. Version 2: step 0's template changed, step 1 another task, step 2
    added after step 0, the edge 0 -> 1 replaced by 0 -> 2."""
    flow = make_flow(
        owner, [step(0, "Format Text", template="Dear <customer>"), step(1, "Format Text", template="b")], [(0, 1)]
    )
    flow_update(
        user=owner,
        flow=flow,
        name=flow.name,
        task_operations=[
            step(0, "Format Text", template="Hello again"),
            step(1, "Send Notification", "Tell ann@example.com"),
            step(2, "Format Text", template="c"),
        ],
        dependencies=[DependencyDraft(0, 2)],
    )
    return Flow.objects.get(pk=flow.pk)


def _page(client, version):
    response = client.get(f"{VERSIONS}{version.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def _section(content, section_id):
    return re.search(rf'id="{section_id}".*?</div>', content, re.DOTALL).group(0)


def test_a_version_page_shows_its_steps_edges_and_readable_changes_from_the_one_before(reader, edited_flow):
    first, second = FlowVersion.objects.filter(flow=edited_flow).order_by("number")
    content = _page(logged_in(reader), second)

    changes = _section(content, "version-changes")
    assert f'href="{VERSIONS}{first.pk}/change/"' in changes and "version 1" in changes
    rows = re.findall(r'<tr class="version-change">(.*?)</tr>', changes, re.DOTALL)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert "added Step 2: Format Text 2 task Format Text" in text
    assert "changed Step 0 parameter template Dear &lt;customer&gt; Hello again" in text  # escaped, never raw HTML
    assert "changed Step 1 task Format Text Send Notification" in text
    assert "parameter template b" in text  # step 1's binding went with its task
    assert "added Edge 0 \u2192 2" in text and "removed Edge 0 \u2192 1" in text
    assert "<customer>" not in content

    steps = _section(content, "version-steps")
    assert steps.count('class="version-step"') == 3 and "Send Notification" in steps
    edges = _section(content, "version-edges")
    assert edges.count('class="version-edge"') == 1


def test_the_first_version_has_nothing_to_compare_with(reader, edited_flow):
    first = FlowVersion.objects.get(flow=edited_flow, number=1)
    changes = _section(_page(logged_in(reader), first), "version-changes")

    assert "nothing before it to compare with" in changes
    assert 'id="previous-version"' not in changes


def test_a_runs_page_links_to_its_version_and_the_versions_changes(owner, reader, edited_flow):
    second = FlowVersion.objects.get(flow=edited_flow, number=2)
    flow_run = flow_execute(user=owner, flow=edited_flow, flow_request=make_request(owner))
    client = logged_in(reader)

    content = client.get(f"/admin/runs/flowrun/{flow_run.pk}/change/").content.decode()

    version_url = f"{VERSIONS}{second.pk}/change/"
    assert f'id="run-version" href="{escape(version_url)}"' in content
    assert f'href="{escape(version_url)}#version-changes"' in content and "changes from version 1" in content
    assert client.get(version_url).status_code == 200


def test_versions_are_read_only_and_another_organizations_answer_404(reader, stranger, edited_flow):
    version = FlowVersion.objects.get(flow=edited_flow, number=2)
    page = f"{VERSIONS}{version.pk}/change/"
    reader_client, stranger_client = logged_in(reader), logged_in(stranger)

    assert stranger_client.get(page).status_code == 404
    assert version not in stranger_client.get(VERSIONS).context["cl"].result_list
    assert version in reader_client.get(VERSIONS).context["cl"].result_list
    assert reader_client.post(page, {"summary": "rewritten"}).status_code == 403
    assert reader_client.post(f"{page.removesuffix('change/')}delete/", {"post": "yes"}).status_code == 403
    assert reader_client.get(f"{VERSIONS}add/").status_code == 403
    assert FlowVersion.objects.get(pk=version.pk).summary != "rewritten"


def test_a_deleted_flows_versions_stay_readable(owner, reader, edited_flow):
    flow_delete(user=owner, flow=edited_flow)
    version = FlowVersion.objects.get(flow=edited_flow, number=2)

    assert "Send Notification" in _page(logged_in(reader), version)
