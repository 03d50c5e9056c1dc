from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = ()

    operations = (
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("member_id", models.BigIntegerField()),
                ("total_fen", models.BigIntegerField()),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    )
