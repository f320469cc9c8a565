"""Every existing flow gets version 1, holding its steps and edges as they are now (until now a PUT changed them in
place, so that is the only state left to keep): dated when the flow was last changed, made by whoever changed it,
and pointed at as the flow's latest version. Nothing is copied or removed: the existing task operation and
dependency rows are version 1's, so the task runs that point at them keep doing so (``runs.0004`` pins the runs to it).

Reversing keeps each flow's latest version only, as the flow's steps and edges (earlier versions' rows are deleted,
their task runs lose the link, as an edit did before), and forgets the versions.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower

FIRST_SUMMARY = "The flow as it was when versions began to be kept."


def forwards(apps, schema_editor):
    """Version 1 for every flow, with the flow's current steps and edges."""
    flow_model = apps.get_model("flows", "Flow")
    version_model = apps.get_model("flows", "FlowVersion")
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    flows = list(
        flow_model.objects.filter(latest_version__isnull=True).only("id", "created_by_email", "modified_by_email")
    )
    if not flows:
        return
    emails = {(flow.modified_by_email or flow.created_by_email).lower() for flow in flows} - {""}
    users = {
        email: user_id
        for email, user_id in user_model.objects.annotate(lower_email=Lower("email"))
        .filter(lower_email__in=emails)
        .values_list("lower_email", "id")
    }
    versions = []
    for flow in flows:
        email = flow.modified_by_email or flow.created_by_email
        versions.append(
            version_model(
                flow_id=flow.id,
                number=1,
                summary=FIRST_SUMMARY,
                created_by_id=users.get(email.lower()),
                created_by_email=email,
                modified_by_email=email,
            )
        )
    version_model.objects.bulk_create(versions, batch_size=500)
    first = version_model.objects.filter(flow_id=OuterRef("flow_id"), number=1).values("id")[:1]
    # Dated when its content was last written: the flow's last change (auto_now_add dated them now).
    version_model.objects.filter(number=1).update(
        created_date=Subquery(flow_model.objects.filter(id=OuterRef("flow_id")).values("modified_date")[:1])
    )
    for name in ("TaskOperation", "Dependency"):
        apps.get_model("flows", name).objects.filter(flow_version__isnull=True).update(flow_version_id=Subquery(first))
    flow_model.objects.filter(latest_version__isnull=True).update(
        latest_version_id=Subquery(version_model.objects.filter(flow_id=OuterRef("id"), number=1).values("id")[:1])
    )


def backwards(apps, schema_editor):
    """Each flow keeps its latest version's steps and edges; the rows of earlier versions are deleted.

    The task runs pointing at deleted steps are unlinked first, and the rows deleted by id without the ORM's
    collector (whose historical models of two apps do not always agree on the step's class).
    """
    flow_model = apps.get_model("flows", "Flow")
    try:
        task_run_model = apps.get_model("runs", "TaskRun")
    except LookupError:  # the runs app is not in this project state: nothing points at the steps
        task_run_model = None
    latest = flow_model.objects.filter(id=OuterRef("flow_id")).values("latest_version_id")[:1]
    for name in ("TaskOperation", "Dependency"):
        model = apps.get_model("flows", name)
        ids = list(
            model.objects.annotate(latest=Subquery(latest))
            .exclude(flow_version_id=models.F("latest"))
            .values_list("id", flat=True)
        )
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            if name == "TaskOperation" and task_run_model is not None:
                task_run_model.objects.filter(task_operation_id__in=batch).update(task_operation_id=None)
            model.objects.filter(id__in=batch)._raw_delete(schema_editor.connection.alias)
    flow_model.objects.update(latest_version=None)


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0003_flow_versions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
