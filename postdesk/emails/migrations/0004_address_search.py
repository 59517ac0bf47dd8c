from django.db import migrations


def create(apps, schema_editor):
    from postdesk.emails.search import create_address_schema, index_addresses

    create_address_schema(schema_editor)
    if schema_editor.connection.vendor == "sqlite":  # existing emails
        Email = apps.get_model("emails", "Email")
        rows = list(Email.objects.values_list("id", "from_name", "from_address", "to", "cc"))
        index_addresses(rows)


def drop(apps, schema_editor):
    from postdesk.emails.search import drop_address_schema

    drop_address_schema(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("emails", "0003_search_index")]
    operations = [migrations.RunPython(create, drop)]
