"""Runs are pinned to the flow version they execute (the schema; ``0004`` pins the existing runs, ``0005`` makes it
required), and an approval records what it fixed about each step.

A task run's step can no longer be deleted under it (PROTECT): steps belong to immutable versions now.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0003_flow_versions"),
        ("runs", "0002_execution_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="flowrun",
            name="flow_version",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runs",
                to="flows.flowversion",
            ),
        ),
        migrations.AlterField(
            model_name="taskrun",
            name="task_operation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="flows.taskoperation",
            ),
        ),
        migrations.AddField(
            model_name="taskrun",
            name="approved_step",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What the approval fixed: task definition, integration, credential and parameters, with "
                "their fingerprint. Empty when not approved.",
            ),
        ),
        migrations.AddField(
            model_name="approvaldecision",
            name="approved_step",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What the decision approved for the step (the task run's approved_step).",
            ),
        ),
    ]
