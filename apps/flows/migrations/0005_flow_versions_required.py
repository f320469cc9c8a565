"""Every task operation and dependency belongs to a flow version (``0004`` gave the existing ones version 1)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0004_flow_versions_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="taskoperation",
            name="flow_version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="task_operations",
                to="flows.flowversion",
            ),
        ),
        migrations.AlterField(
            model_name="dependency",
            name="flow_version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dependencies",
                to="flows.flowversion",
            ),
        ),
    ]
