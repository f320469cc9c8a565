"""Flows become histories of immutable versions (the schema; ``0004`` fills it, ``0005`` makes it required); flows
and flow requests are deleted softly.

The steps of a version are unique per version now, no longer per flow. The data and the NOT NULL are separate
migrations: PostgreSQL refuses to alter a table in the transaction that updated its rows' foreign keys.
"""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0002_planner"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FlowVersion",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_date", models.DateTimeField(auto_now_add=True)),
                ("modified_date", models.DateTimeField(auto_now=True)),
                ("created_by_email", models.CharField(blank=True, default="", max_length=254)),
                ("modified_by_email", models.CharField(blank=True, default="", max_length=254)),
                ("number", models.PositiveIntegerField()),
                (
                    "summary",
                    models.TextField(blank=True, default="", help_text="What changed from the version before."),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "flow",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="versions", to="flows.flow"
                    ),
                ),
            ],
            options={
                "ordering": ["flow", "number"],
                "constraints": [
                    models.UniqueConstraint(fields=("flow", "number"), name="unique_flow_version_number")
                ],
            },
        ),
        migrations.AddField(
            model_name="flow",
            name="latest_version",
            field=models.ForeignKey(
                blank=True,
                help_text="The newest version: what a new run executes. Null only while the flow is being created.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="flows.flowversion",
            ),
        ),
        migrations.AddField(
            model_name="flow",
            name="deleted_at",
            field=models.DateTimeField(
                blank=True, help_text="When the flow was deleted; its versions and runs stay as history.", null=True
            ),
        ),
        migrations.AddField(
            model_name="flowrequest",
            name="deleted_at",
            field=models.DateTimeField(
                blank=True, help_text="When the request was deleted; its runs stay.", null=True
            ),
        ),
        migrations.AddField(
            model_name="taskoperation",
            name="flow_version",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="task_operations",
                to="flows.flowversion",
            ),
        ),
        migrations.AddField(
            model_name="dependency",
            name="flow_version",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dependencies",
                to="flows.flowversion",
            ),
        ),
        migrations.AlterField(
            model_name="taskoperation",
            name="flow",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="task_operations_of_every_version",
                to="flows.flow",
            ),
        ),
        migrations.AlterField(
            model_name="dependency",
            name="flow",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dependencies_of_every_version",
                to="flows.flow",
            ),
        ),
        migrations.RemoveConstraint(model_name="taskoperation", name="unique_task_operation_index"),
        migrations.AddConstraint(
            model_name="taskoperation",
            constraint=models.UniqueConstraint(
                fields=("flow_version", "index"), name="unique_task_operation_index_per_version"
            ),
        ),
        migrations.RemoveConstraint(model_name="dependency", name="unique_dependency"),
        migrations.AddConstraint(
            model_name="dependency",
            constraint=models.UniqueConstraint(
                fields=("flow_version", "source_task_operation", "target_task_operation"),
                name="unique_dependency_per_version",
            ),
        ),
    ]
