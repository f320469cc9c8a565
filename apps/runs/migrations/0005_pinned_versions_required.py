"""Every run executes a flow version (``0004`` pinned the existing ones to version 1)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0004_pinned_versions_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="flowrun",
            name="flow_version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="runs", to="flows.flowversion"
            ),
        ),
    ]
