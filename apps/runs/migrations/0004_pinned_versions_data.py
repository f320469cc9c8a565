"""Every existing run is pinned to version 1 of its flow (``flows.0004`` made it: the flow's steps as they are now).

Their task runs already point at version 1's steps (the rows were kept). A step approved before this migration and
not yet run has no ``approved_step``: it runs as it was approved, with the prepared parameters it holds (the engine
checks the catalogue still has its task). Reversing unpins them.
"""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def forwards(apps, schema_editor):
    flow_model = apps.get_model("flows", "Flow")
    apps.get_model("runs", "FlowRun").objects.filter(flow_version__isnull=True).update(
        flow_version_id=Subquery(flow_model.objects.filter(id=OuterRef("flow_id")).values("latest_version_id")[:1])
    )


def backwards(apps, schema_editor):
    apps.get_model("runs", "FlowRun").objects.update(flow_version=None)


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0004_flow_versions_data"),
        ("runs", "0003_pinned_versions"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
