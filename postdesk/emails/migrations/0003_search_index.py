from django.db import migrations


def create(apps, schema_editor):
    from postdesk.emails.search import create_schema

    create_schema(schema_editor)


def drop(apps, schema_editor):
    from postdesk.emails.search import drop_schema

    drop_schema(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("emails", "0002_initial")]
    operations = [migrations.RunPython(create, drop)]
